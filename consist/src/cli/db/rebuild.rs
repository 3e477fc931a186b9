//! `consist db rebuild`: the catalog written again from the run snapshots under a directory.

use std::path::Path;

use super::super::Cli;
use super::super::error::{CliError, Result};
use super::confirm;
use crate::admin::DamagedFate;

pub(super) fn run(cli: &Cli, run_dir: Option<&Path>, replace_all: bool, yes: bool) -> Result<()> {
    let catalog = cli.catalog()?;
    let root = match run_dir.map(Path::to_path_buf).or_else(|| catalog.default_snapshot_root()) {
        Some(root) => root,
        None => {
            return Err(CliError::Usage(format!(
                "{} is a server catalog, with no folder of its own; pass --run-dir with the run directory whose \
                 snapshots to restore",
                catalog.location()
            )));
        }
    };
    let report = if replace_all {
        let question = format!(
            "replace every run of {} with the snapshots under {}? Runs of other run dirs and hosts, and rows \
             without a snapshot, are removed",
            catalog.location(),
            root.display()
        );
        let refusal = "db rebuild --replace-all removes every run it does not find a snapshot for; pass --yes to \
                       confirm, or leave out --replace-all to keep them";
        if !confirm(yes, &question, refusal)? {
            return Ok(());
        }
        catalog.rebuild_replacing_all(&root)?
    } else {
        catalog.rebuild(&root)?
    };
    println!("restored {} run(s) from snapshots under {} into {}", report.restored, root.display(), catalog.location());
    if !report.removed.is_empty() {
        println!("removed {} run(s) whose snapshots are gone", report.removed.len());
    }
    if report.untouched > 0 {
        println!(
            "left {} other run(s) as they were (other run dirs or hosts, or rows without a snapshot)",
            report.untouched
        );
    }
    if report.indexed > 0 {
        println!("re-indexed {} cache entr(ies) missing from the signature index", report.indexed);
    }
    for d in &report.damaged {
        let line = d.line.map(|l| format!(":{l}")).unwrap_or_default();
        let run = d.run_id.as_deref().unwrap_or("unknown run");
        let fate = match report.fate(d) {
            DamagedFate::NotRestored => "NOT restored",
            DamagedFate::RowsKept => "its database rows are kept",
            DamagedFate::RestoredFromCopy => "restored from another copy of its snapshot",
        };
        eprintln!("warning: {}{line} cannot be read ({}); {run}: {fate}", d.file.display(), d.reason);
    }
    match report.lost.len() {
        0 => Ok(()),
        n => Err(CliError::Incomplete(format!(
            "{n} run(s) could not be restored from their damaged snapshots (listed above); restore those files \
             from a backup and run `consist db rebuild` again"
        ))),
    }
}
