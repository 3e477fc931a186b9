//! Standard exports of recorded runs, for tools that do not read consist's catalog: OpenLineage
//! events (data platforms), a W3C PROV-JSON document (provenance research) and a Workflow Run
//! RO-Crate (FAIR publication). All three are built from the same [`RunRecord`]s, selected by
//! [`ExportScope`]; `consist export` writes them.

mod openlineage;
mod prov;
mod rocrate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::run::RunRecord;
use crate::store::RunQuery;

/// The producer named in every export: consist at its version. consist has no public home URL, so
/// exports name it with URNs under `urn:consist:`, the namespace of their run and artifact ids too
/// (the guide's exports chapter lists them); a home would change them here and in the facet schema.
pub(crate) const PRODUCER: &str = concat!("urn:consist:producer:rust:", env!("CARGO_PKG_VERSION"));

/// A standard format runs can be exported in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum ExportFormat {
    /// OpenLineage 2-0-2 run events, one JSON object per line: a START and a COMPLETE or FAIL
    /// event per run.
    Openlineage,
    /// One W3C PROV-JSON document: runs as activities, artifacts as entities.
    ProvJson,
    /// A Workflow Run RO-Crate (Process Run Crate profile): a directory holding
    /// `ro-crate-metadata.json` (and, with files, the artifacts themselves).
    RoCrate,
}

/// Which runs to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportScope {
    /// Every recorded run.
    All,
    /// One run (an id or a unique prefix).
    Run(String),
    /// A scenario's header run and every run in it: its name (its latest run), or an id or a
    /// unique prefix ([`Catalog::resolve_scenario`]).
    Scenario(String),
}

/// What an export wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    /// The format.
    pub format: ExportFormat,
    /// Runs exported.
    pub runs: usize,
    /// Records written: events, PROV statements or crate entities.
    pub records: usize,
    /// The file written (the crate's metadata file for an RO-Crate).
    pub path: PathBuf,
    /// Artifact files copied into the crate.
    pub files_copied: usize,
}

impl Catalog {
    /// The runs `scope` selects, oldest first, with everything recorded about them.
    pub fn export_records(&self, scope: &ExportScope) -> Result<Vec<RunRecord>> {
        let ids: Vec<String> = match scope {
            ExportScope::All => self.find_runs(&RunQuery::default())?.into_iter().map(|r| r.id).collect(),
            ExportScope::Run(id) => vec![self.resolve_run(id)?.id],
            ExportScope::Scenario(id) => {
                let header = self.resolve_scenario(id)?;
                let children = self.find_runs(&RunQuery::default().parent(&header.id))?;
                if children.is_empty() {
                    return Err(Error::Refused(format!(
                        "run `{}` is not a scenario: no run belongs to it; export it alone with --run",
                        header.id
                    )));
                }
                let mut ids = vec![header.id.clone()];
                ids.extend(children.into_iter().map(|r| r.id));
                ids
            }
        };
        let mut records = self.run_records(&ids)?;
        for record in &mut records {
            for artifact in record.inputs.iter_mut().chain(record.outputs.iter_mut()) {
                *artifact = self.here(artifact.clone());
            }
            if let Some(moved) = self.relocated(&record.run_dir) {
                record.run_dir = moved;
            }
        }
        records.sort_by(|a, b| (a.run.started_at, &a.run.id).cmp(&(b.run.started_at, &b.run.id)));
        Ok(records)
    }

    /// Export the runs `scope` selects as `format` into `out` (a file; a directory for an
    /// RO-Crate, which `with_files` fills with the artifacts' files too).
    pub fn export(
        &self,
        format: ExportFormat,
        scope: &ExportScope,
        out: &Path,
        with_files: bool,
    ) -> Result<ExportReport> {
        if with_files && format != ExportFormat::RoCrate {
            return Err(Error::Refused(
                "only an RO-Crate holds files (--with-files with --format ro-crate); the other formats name them"
                    .into(),
            ));
        }
        if format == ExportFormat::RoCrate && out.read_dir().is_ok_and(|mut entries| entries.next().is_some()) {
            return Err(Error::Refused(format!(
                "{} is not empty; an RO-Crate is written into a new or empty directory",
                out.display()
            )));
        }
        let records = self.export_records(scope)?;
        if records.is_empty() {
            return Err(Error::Refused("there are no recorded runs to export".into()));
        }
        // Parents outside the selection are still named (a scenario's job, for OpenLineage).
        let mut parents: BTreeMap<String, String> =
            records.iter().map(|r| (r.run.id.clone(), r.run.model_name.clone())).collect();
        for parent in records.iter().filter_map(|r| r.run.parent_run_id.as_deref()) {
            if !parents.contains_key(parent)
                && let Ok(run) = self.resolve_run(parent)
            {
                parents.insert(run.id, run.model_name);
            }
        }
        let (path, records_written, files_copied) = match format {
            ExportFormat::Openlineage => {
                let events = openlineage::events(&records, &parents);
                let mut text = String::new();
                for event in &events {
                    text.push_str(&event.to_string());
                    text.push('\n');
                }
                write(out, text.as_bytes())?;
                (out.to_path_buf(), events.len(), 0)
            }
            ExportFormat::ProvJson => {
                let (document, statements) = prov::document(&records);
                write(out, serde_json::to_string_pretty(&document).unwrap_or_default().as_bytes())?;
                (out.to_path_buf(), statements, 0)
            }
            ExportFormat::RoCrate => {
                std::fs::create_dir_all(out).map_err(Error::io("creating the crate directory", out))?;
                let crate_ = rocrate::build(&records, out, with_files)?;
                let path = out.join("ro-crate-metadata.json");
                write(&path, serde_json::to_string_pretty(&crate_.metadata).unwrap_or_default().as_bytes())?;
                (path, crate_.entities, crate_.files_copied)
            }
        };
        Ok(ExportReport { format, runs: records.len(), records: records_written, path, files_copied })
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::files::atomic::write_atomic(path, bytes, true).map_err(Error::io("writing the export", path))
}

/// A deterministic UUID for a run id (RFC 9562 version 8: blake3 of the id), so the same run
/// has the same id in every export.
pub(crate) fn run_uuid(run_id: &str) -> String {
    let hash = blake3::hash(format!("consist-run-uuid-v1:{run_id}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash.as_bytes()[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid().to_string()
}

/// The key under which exports describe an artifact: its id, except for a raw input file, which
/// every run that reads it records anew: those are one file, keyed by where it is now (after a
/// move) and its content.
pub(crate) fn artifact_key(artifact: &crate::artifact::Artifact) -> String {
    match (&artifact.run_id, &artifact.hash) {
        (None, Some(hash)) => {
            let digest = blake3::hash(format!("{}\n{hash}", artifact.path.display()).as_bytes()).to_hex();
            format!("raw-{}", &digest[..32])
        }
        _ => artifact.id.clone(),
    }
}

/// RFC 3339 time with a `Z`, as every format here wants it.
pub(crate) fn time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
