//! How a catalog's local state stays true to a catalog that other processes and hosts change:
//! its identity, purges made elsewhere, and the cache sources a signature resolves to.
//!
//! - **Identity.** Local state (signature index, miss history) is for one catalog, named by the
//!   id the catalog made when it was created. State found for another id (a catalog recreated,
//!   restored or replaced at the same URL or path) is dropped, never served.
//! - **Purges.** A purge raises the catalog's purge epoch. An open tracker notices at its next
//!   cache lookup: on DuckDB by one stat of the purge mark beside the file, at once; on
//!   PostgreSQL by asking the server at most once per [`EPOCH_POLL`]. It then forgets what it
//!   remembered and asks again, so a purged run is never served after that.
//! - **Sources.** On PostgreSQL a signature's cache sources come from the catalog (earliest
//!   completion first, then run id); this host's index only remembers which one it confirmed,
//!   and at which purge epoch. With the server unreachable, only this host's own runs that have
//!   not reached the catalog yet are served; everything else executes and is recorded.

use std::sync::Mutex;
use std::time::Instant;

use super::Catalog;
use crate::catalog::index::IndexEntry;
use crate::catalog::local::{CatalogMark, file_key};
use crate::error::{Error, Result};
use crate::location::CatalogLocation;
use crate::run::RunRecord;
use crate::store::{CatalogIdentity, EPOCH_POLL};

/// Cache sources a lookup asks the catalog for at once (it tries them in order).
const SOURCES: usize = 4;

/// What this catalog object last saw of the catalog it serves from.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    /// The catalog id it adopted: another one (the catalog was replaced while it was open)
    /// makes it forget everything it remembered.
    adopted: Option<String>,
    /// DuckDB: the purge mark's content, and when the file was last checked.
    mark: Option<String>,
    file_checked: Option<Instant>,
    /// PostgreSQL: the purge epoch (`None` while the catalog cannot be reached: no confirmed
    /// entry is trusted then), and when it was read.
    epoch: Option<i64>,
    polled: Option<Instant>,
}

pub(crate) type SeenPurges = Mutex<Seen>;

impl Catalog {
    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Check that the local state is this catalog's (see the module docs) once the store has
    /// told its identity; drop the state's cache entries and miss history if it was made for
    /// another catalog, and forget what this process remembered if it adopted another one
    /// before. `file` is a DuckDB file's [`file_key`].
    fn adopt(&self, seen: &mut Seen, identity: &CatalogIdentity, file: Option<String>) {
        self.adopt_id(seen, &identity.id);
        let known = self.local.mark();
        if let Some(known) = &known
            && !known.id.is_empty()
            && known.id != identity.id
        {
            crate::logging::warning!(
                catalog = %self.location,
                was = %known.id,
                now = %identity.id,
                "this catalog is not the one the local cache was made for (it was recreated, restored or replaced); \
                 dropping the local cache entries, which name runs it may not hold"
            );
            self.drop_local_cache();
        }
        // Rewritten after each write of this host too (one small file per database batch), so
        // the next tracker that opens the catalog need not open the file to know it.
        let mark = CatalogMark { id: identity.id.clone(), file };
        if known.as_ref() != Some(&mark) {
            self.local.set_mark(&mark);
        }
    }

    /// Adopt catalog id `id`: what this process remembered was another catalog's if it had
    /// adopted another id.
    fn adopt_id(&self, seen: &mut Seen, id: &str) {
        if seen.adopted.as_ref().is_some_and(|adopted| adopted != id) {
            self.index.forget_all();
        }
        seen.adopted = Some(id.to_owned());
    }

    /// Forget every cache entry and the miss history (the pending queue stays: those runs were
    /// recorded here and still go to the catalog).
    fn drop_local_cache(&self) {
        self.index.clear();
        self.history.clear();
    }

    /// After a write to the store: adopt the identity it read (no extra round trip).
    pub(crate) fn adopt_seen(&self) {
        if let Some(identity) = self.store.identity_seen() {
            let file = self.location.duckdb_path().and_then(file_key);
            self.adopt(&mut self.seen(), &identity, file);
        }
    }

    /// When a tracker opens: make sure the local state is this catalog's (see
    /// [`Catalog::check_file`] for a DuckDB file). A server catalog tells its identity when
    /// connected; one this host has reached before but cannot reach now is checked once it is
    /// back, and one it has never reached is refused (most likely a mistake in the URL).
    pub(crate) fn check_identity(&self) -> Result<()> {
        let mut seen = self.seen();
        match &self.location {
            CatalogLocation::DuckDb(path) => self.check_file(&mut seen, path),
            CatalogLocation::Postgres(_) => match self.store.identity() {
                Ok(Some(identity)) => {
                    self.adopt(&mut seen, &identity, None);
                    (seen.epoch, seen.polled) = (Some(identity.purge_epoch), Some(Instant::now()));
                }
                Ok(None) => {}
                Err(e) if e.is_unreachable() && self.local.mark().is_some() => {
                    crate::logging::warning!(error = %e, "starting without the catalog")
                }
                Err(Error::CatalogUnreachable { location, reason }) => {
                    return Err(Error::Postgres {
                        location,
                        action: "connecting",
                        reason: format!(
                            "{reason}; this host has never reached this catalog: check the URL and that the server \
                             is up (once it has, steps carry on through an outage)"
                        ),
                    });
                }
                Err(e) => return Err(e),
            },
        }
        Ok(())
    }

    /// Make sure the local state is the DuckDB file's at `path`. A file whose [`file_key`] is
    /// the one recorded (consist records it after each write) costs one stat; another file
    /// (replaced, compacted, written by another program, first use) is opened once to read its
    /// id; a file that is gone, or that has no id, while state for an id was recorded takes its
    /// cache entries with it. A file this consist cannot read (a newer schema, not DuckDB, held
    /// too long) fails no step: its runs are recorded in their snapshots, and the writer reports
    /// the file when it tries to write it.
    fn check_file(&self, seen: &mut Seen, path: &std::path::Path) {
        let file = file_key(path);
        let mark = self.local.mark();
        let known_id = mark.as_ref().is_some_and(|m| !m.id.is_empty());
        match (&file, &mark) {
            (Some(key), Some(mark)) if mark.file.as_ref() == Some(key) => {
                // Another process of this host adopted the file (after writing it, or after it was
                // replaced): what this one remembered is another catalog's if the id moved.
                if !mark.id.is_empty() {
                    self.adopt_id(seen, &mark.id);
                }
            }
            (Some(_), _) => match self.store.identity() {
                Ok(Some(identity)) => self.adopt(seen, &identity, file),
                Ok(None) => {
                    if known_id {
                        self.gone("the catalog file has been replaced by one without an id");
                    }
                    // Remembered as seen, so the next tracker need not open it to learn that again.
                    self.local.set_mark(&CatalogMark { id: String::new(), file });
                }
                Err(e) => tracing::debug!(error = %e, "could not read the catalog's id"),
            },
            (None, Some(_)) => {
                if known_id {
                    self.gone("the catalog file is gone");
                }
                self.local.clear_mark();
            }
            (None, None) => {}
        }
    }

    /// The catalog the local state was made for is gone: drop its cache entries.
    fn gone(&self, what: &str) {
        crate::logging::warning!(
            catalog = %self.location,
            "{what}; dropping the local cache entries that named its runs (`consist db rebuild` restores the \
             runs and their entries from the snapshots)"
        );
        self.drop_local_cache();
    }

    /// Notice purges and a replaced catalog since this catalog last looked (see the module
    /// docs). DuckDB: the purge mark is read at every lookup; at most once per [`EPOCH_POLL`],
    /// the local mark (which any tracker of this host that finds the file replaced rewrites)
    /// and whether the file still exists. PostgreSQL: the identity and purge epoch are read at most once
    /// per [`EPOCH_POLL`]; a catalog that cannot be reached leaves no epoch, so no confirmed
    /// entry is served until it answers again.
    fn revalidate(&self) {
        let mut seen = self.seen();
        match &self.location {
            CatalogLocation::DuckDb(path) => {
                let mark = self.local.purge_mark();
                if mark != seen.mark {
                    self.index.forget_all();
                    seen.mark = mark;
                }
                // Once per EPOCH_POLL: the file gone, or another process of this host found it
                // replaced (the mark it rewrote names another id).
                if seen.file_checked.is_none_or(|t| t.elapsed() >= EPOCH_POLL) {
                    seen.file_checked = Some(Instant::now());
                    let mark = self.local.mark();
                    let moved = mark.as_ref().is_some_and(|m| !m.id.is_empty() && seen.adopted.as_ref() != Some(&m.id));
                    if moved || (seen.adopted.is_some() && !path.exists()) {
                        self.check_file(&mut seen, path);
                    }
                }
            }
            CatalogLocation::Postgres(_) => {
                if seen.polled.is_some_and(|t| t.elapsed() < EPOCH_POLL) {
                    return;
                }
                seen.polled = Some(Instant::now());
                match self.store.identity() {
                    Ok(Some(identity)) => {
                        self.adopt(&mut seen, &identity, None);
                        if seen.epoch != Some(identity.purge_epoch) {
                            self.index.forget_all();
                            seen.epoch = Some(identity.purge_epoch);
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        // `sources` serves only this host's unsynced runs meanwhile.
                        tracing::debug!(error = %e, "could not read the catalog's purge epoch");
                        seen.epoch = None;
                    }
                }
            }
        }
    }

    /// The purge epoch this catalog last read from a server catalog.
    fn epoch_seen(&self) -> Option<i64> {
        self.seen().epoch
    }

    /// The cache sources of `signature`, in the order to try them (the first whose outputs are
    /// usable serves the hit; see [`Catalog::confirm`]). A DuckDB catalog's index answers. A
    /// server catalog's local entry answers only if it was confirmed at the current purge
    /// epoch; otherwise the catalog is asked. A run of this host that has not reached the
    /// catalog yet (still queued) is offered when the catalog has none, and is all that is
    /// offered while the catalog cannot be reached.
    pub(crate) fn sources(&self, signature: &str) -> Result<Vec<IndexEntry>> {
        self.revalidate();
        let local = self.index.get(signature)?;
        if matches!(self.location, CatalogLocation::DuckDb(_)) {
            return Ok(local.into_iter().collect());
        }
        let epoch = self.epoch_seen();
        if let Some(entry) = &local
            && entry.confirmed
            && epoch.is_some()
            && entry.purge_epoch == epoch
        {
            return Ok(vec![entry.clone()]);
        }
        let unsynced = local.filter(|e| self.pending.get(&e.run_id).is_some());
        let records = match self.store.cache_sources(signature, SOURCES) {
            Ok(records) => records,
            Err(e) if e.is_unreachable() => {
                tracing::debug!(error = %e, signature, "catalog unreachable: only this host's unsynced runs are sources");
                return Ok(unsynced.into_iter().collect());
            }
            Err(e) => return Err(e),
        };
        let mut found: Vec<IndexEntry> =
            records.into_iter().filter_map(|r| self.source_entry(signature, r, epoch)).collect();
        if found.is_empty() {
            found.extend(unsynced);
        }
        Ok(found)
    }

    /// The index entry for a cache source the catalog named, unless its ids could name files
    /// outside where they belong (refused with a warning naming the catalog and the value).
    fn source_entry(&self, signature: &str, record: RunRecord, epoch: Option<i64>) -> Option<IndexEntry> {
        if let Err(e) = crate::ids::check_record(&record, &self.location) {
            crate::logging::warning!(error = %e, "skipping a cache source");
            return None;
        }
        Some(IndexEntry {
            signature: signature.to_owned(),
            confirmed: true,
            purge_epoch: epoch,
            ..IndexEntry::of(&record)
        })
    }

    /// Remember `entry` as the source that served `signature` here. A DuckDB catalog's entry is
    /// already in its index; a server catalog's is remembered as confirmed at the purge epoch
    /// it was read in, so later lookups need not ask until a purge.
    pub(crate) fn confirm(&self, entry: &IndexEntry) {
        if entry.confirmed
            && matches!(self.location, CatalogLocation::Postgres(_))
            && !matches!(self.index.get(&entry.signature), Ok(Some(known)) if known == *entry)
            && let Err(e) = self.index.put(entry.clone())
        {
            tracing::debug!(error = %e, "could not remember a confirmed cache source");
        }
    }

    /// The run dirs trackers of this catalog used on this host, each spelled once. A recorded run
    /// dir counts while it is one (`.consist/`): a state directory handed over with a project
    /// could list any directory.
    pub(crate) fn local_run_dirs(&self) -> Vec<std::path::PathBuf> {
        let mut dirs: Vec<std::path::PathBuf> = self
            .local
            .run_dirs()
            .into_iter()
            .filter(|d| d.join(".consist").is_dir())
            .map(|d| std::fs::canonicalize(&d).unwrap_or(d))
            .collect();
        dirs.sort();
        dirs.dedup();
        dirs
    }

    /// Whether a path lies in a place this catalog's maintenance may write or delete on this
    /// host: the DuckDB file's own directory, or a run directory a tracker of this catalog used
    /// here (recorded when it opened). A path a catalog or snapshot merely names (another host's
    /// run dir, a hostile record) is not: purges and `fail-zombies` leave files there alone. The
    /// places are read once, when this is called; the returned test is then asked per path.
    pub(crate) fn owner(&self) -> impl Fn(&std::path::Path) -> bool + use<> {
        let home = self.location.duckdb_path().and_then(|db| std::fs::canonicalize(db.parent()?).ok());
        let roots: Vec<std::path::PathBuf> = home.into_iter().chain(self.local_run_dirs()).collect();
        move |path| {
            if path.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
                return false;
            }
            // Symlinks resolved where the path exists, so a link cannot lead outside.
            let resolved = std::fs::canonicalize(path).unwrap_or_else(|_| crate::mounts::normalize(path));
            roots.iter().any(|root| resolved.starts_with(root))
        }
    }

    /// Write `records` to the store now and adopt the identity it read.
    pub(crate) fn write_store(&self, records: &[RunRecord]) -> Result<()> {
        self.store.write(records)?;
        self.adopt_seen();
        Ok(())
    }

    /// On a catalog shared by many hosts, write an executed run to the store at once: when it
    /// starts, so every host sees it `running` (and can tell it from a zombie by its lease), and
    /// when it ends, before its lease is released, so that a twin waiting on another host finds
    /// it there and hits. A finished run leaves the queue once written; an unreachable catalog
    /// leaves it queued for the writer.
    pub(crate) fn write_through(&self, record: &RunRecord) {
        if !matches!(self.location, CatalogLocation::Postgres(_)) {
            return;
        }
        let written = match record.run.status.is_terminal() {
            true => self.write_store(std::slice::from_ref(record)),
            false => self.store.write_started(std::slice::from_ref(record)),
        };
        match written {
            Ok(()) if record.run.status.is_terminal() => self.pending.remove(&record.run.id),
            Ok(()) => {}
            Err(e) => tracing::debug!(error = %e, run = %record.run.id, "run stays queued for the catalog"),
        }
    }
}
