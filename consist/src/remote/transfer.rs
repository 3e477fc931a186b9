//! Moving many files between this host and a remote at once, in parallel, with a summary that a
//! second run completes (what is already there is skipped, by its content hash).

use std::path::PathBuf;

use futures_util::StreamExt;
use serde::Serialize;

use super::{Remote, Uploaded};

/// Transfers run at once (small objects are dominated by round trips, not bandwidth).
const AT_ONCE: usize = 16;

/// One file to move: its content hash, and where it is (push) or goes (pull) on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// blake3 of its bytes (hex): the object's name.
    pub hash: String,
    /// The local file.
    pub path: PathBuf,
}

/// What a batch of transfers did. Field names are stable (`--json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TransferReport {
    /// Files moved.
    pub moved: usize,
    /// Files already where they were going (the same content).
    pub already: usize,
    /// Bytes moved.
    pub bytes: u64,
    /// Files to push that are not on this host (their objects may still be on the remote).
    pub missing: Vec<PathBuf>,
    /// Transfers that failed, each with the reason (running the same command again retries them).
    pub failed: Vec<(PathBuf, String)>,
}

/// The outcome of one transfer.
enum Outcome {
    Moved(u64),
    Already,
    Missing,
    Failed(String),
}

impl Remote {
    /// Upload these files (each under its content hash), `AT_ONCE` at a time; `done` is called
    /// after each with the bytes it moved.
    pub fn push(&self, items: &[Transfer], done: &(dyn Fn(u64) + Sync)) -> TransferReport {
        self.each(items, done, |item| async move {
            let Ok(meta) = std::fs::metadata(&item.path) else { return Outcome::Missing };
            let key = match self.key(&item.hash) {
                Ok(key) => key,
                Err(e) => return Outcome::Failed(e.to_string()),
            };
            match self.put(&key, &item.path).await {
                Ok(Uploaded::New) => Outcome::Moved(meta.len()),
                Ok(Uploaded::AlreadyThere) => Outcome::Already,
                Err(e) => Outcome::Failed(e.to_string()),
            }
        })
    }

    /// Download these objects to their paths, `AT_ONCE` at a time, skipping a file already
    /// there with the right content; each download is checked against its hash.
    pub fn pull(&self, items: &[Transfer], done: &(dyn Fn(u64) + Sync)) -> TransferReport {
        self.each(items, done, |item| async move {
            if crate::files::hash::hash_file(&item.path).is_ok_and(|h| h == item.hash) {
                return Outcome::Already;
            }
            let key = match self.key(&item.hash) {
                Ok(key) => key,
                Err(e) => return Outcome::Failed(e.to_string()),
            };
            match self.get(&key, &item.hash, &item.path).await {
                Ok(()) => Outcome::Moved(std::fs::metadata(&item.path).map_or(0, |m| m.len())),
                Err(e) => Outcome::Failed(e.to_string()),
            }
        })
    }

    fn each<'a, F, Fut>(&'a self, items: &'a [Transfer], done: &(dyn Fn(u64) + Sync), one: F) -> TransferReport
    where
        F: Fn(&'a Transfer) -> Fut + Send + Sync + 'a,
        Fut: std::future::Future<Output = Outcome> + Send + 'a,
    {
        let futures: Vec<_> = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let future = one(item);
                async move { (i, future.await) }
            })
            .collect();
        let outcomes: Vec<(usize, Outcome)> = self.block_on(async {
            futures_util::stream::iter(futures)
                .buffer_unordered(AT_ONCE)
                .inspect(|(_, outcome)| done(if let Outcome::Moved(n) = outcome { *n } else { 0 }))
                .collect()
                .await
        });
        let outcomes = outcomes.into_iter().map(|(i, outcome)| (&items[i], outcome));
        let mut report = TransferReport::default();
        for (item, outcome) in outcomes {
            match outcome {
                Outcome::Moved(bytes) => {
                    report.moved += 1;
                    report.bytes += bytes;
                }
                Outcome::Already => report.already += 1,
                Outcome::Missing => report.missing.push(item.path.clone()),
                Outcome::Failed(reason) => report.failed.push((item.path.clone(), reason)),
            }
        }
        report.missing.sort();
        report.failed.sort();
        report
    }
}
