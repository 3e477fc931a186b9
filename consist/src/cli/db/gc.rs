//! `consist db gc` (a cache within bounds) and `consist pin` (runs gc keeps).

use std::io::IsTerminal;

use bytesize::ByteSize;

use super::super::error::{CliError, Result};
use super::super::{Cli, print_json};
use super::confirm;
use crate::catalog::gc::{GcOptions, GcReport};

/// Arguments of `consist db gc`.
#[derive(Debug, clap::Args)]
pub struct GcArgs {
    /// Free the least recently used runs' files until the cache takes at most this much (50GB,
    /// 500MiB, ...).
    #[arg(long, value_parser = parse_size)]
    max_size: Option<u64>,
    /// Free the files of runs last used (executed or hit) longer ago than this (90d, 12h, ...).
    #[arg(long, value_parser = humantime::parse_duration)]
    max_age: Option<std::time::Duration>,
    /// Keep the runs carrying this tag (repeatable), besides pinned ones (`consist pin`).
    #[arg(long)]
    keep_tag: Vec<String>,
    /// Keep the runs used (executed or hit) within this long, whatever the bounds: a workflow
    /// running now may be about to read what it was just handed (0s: no grace).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1h")]
    min_age: std::time::Duration,
    /// --dry-run, --yes, --json.
    #[command(flatten)]
    removal: super::super::Removal,
}

fn parse_size(text: &str) -> std::result::Result<u64, String> {
    text.parse::<ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| format!("`{text}` is not a size such as 50GB or 500MiB: {e}"))
}

pub(super) fn run(cli: &Cli, args: &GcArgs) -> Result<()> {
    if args.max_size.is_none() && args.max_age.is_none() {
        return Err(CliError::Usage("say what to keep: --max-size (e.g. 50GB), --max-age (e.g. 90d), or both".into()));
    }
    let catalog = cli.existing_catalog()?;
    let options = GcOptions {
        max_size: args.max_size,
        max_age: args.max_age,
        keep_tags: args.keep_tag.clone(),
        min_age: Some(args.min_age),
        dry_run: true,
        only: None,
    };
    let mut confirmed = None;
    if !args.removal.dry_run && !args.removal.yes {
        let plan = catalog.gc(&options)?;
        if !plan.evicted.is_empty() {
            if std::io::stdin().is_terminal() {
                print_report(&plan);
            }
            let question = format!("delete the output files of these {} run(s)?", plan.evicted.len());
            let refusal = format!(
                "db gc would delete {} file(s) of {} run(s); pass --yes to confirm, or --dry-run to see them",
                plan.files_before - plan.files_after,
                plan.evicted.len()
            );
            if !confirm(false, &question, &refusal)? {
                return Ok(());
            }
        }
        // What was confirmed, and nothing else (a run used or pinned since stays).
        confirmed = Some(plan.evicted.into_iter().map(|e| e.run).collect());
    }
    let report = catalog.gc(&GcOptions { dry_run: args.removal.dry_run, only: confirmed, ..options })?;
    if args.removal.json {
        print_json(&report);
    } else {
        print_report(&report);
    }
    Ok(())
}

/// Bytes in SI units, as `--max-size` reads them (`50GB` is 50 x 10^9 bytes).
fn size(bytes: u64) -> String {
    ByteSize(bytes).display().si().to_string()
}

fn print_report(r: &GcReport) {
    let verb = if r.dry_run { "would free" } else { "freed" };
    println!(
        "cache files on this host: {} in {} file(s) -> {} in {} file(s)",
        size(r.bytes_before),
        r.files_before,
        size(r.bytes_after),
        r.files_after
    );
    println!("{verb} {} of {} run(s); every record is kept", size(r.bytes_before - r.bytes_after), r.evicted.len());
    let copies = r.evicted.iter().filter(|e| e.copies_only).count();
    if copies > 0 {
        println!(
            "  {copies} of them ran in a run dir not on this host: only the copies fetched here are freed, and they stay cache sources"
        );
    }
    for (model, freed) in &r.by_model {
        println!("  {model:<24} {:>4} run(s) {:>5} file(s) {:>10}", freed.runs, freed.files, size(freed.bytes));
    }
    for (reason, runs) in &r.protected {
        println!("kept: {runs} run(s), {reason}");
    }
    for failure in &r.failed {
        println!("not deleted (the next gc tries again): {failure}");
    }
}

/// Arguments of `consist pin`.
#[derive(Debug, clap::Args)]
pub struct PinArgs {
    /// Runs to pin (ids or unique prefixes).
    runs: Vec<String>,
    /// Pin every run carrying this tag.
    #[arg(long)]
    tag: Option<String>,
    /// Unpin instead.
    #[arg(long)]
    unpin: bool,
}

pub(crate) fn pin(cli: &Cli, args: &PinArgs) -> Result<()> {
    if args.runs.is_empty() && args.tag.is_none() {
        return Err(CliError::Usage("name the runs to pin, or select them with --tag".into()));
    }
    let catalog = cli.existing_catalog()?;
    let mut ids = Vec::new();
    for prefix in &args.runs {
        ids.push(catalog.resolve_run(prefix)?.id);
    }
    if let Some(tag) = &args.tag {
        let query = crate::store::RunQuery::default().tag(tag);
        ids.extend(catalog.find_runs(&query)?.into_iter().map(|r| r.id));
    }
    let changed = catalog.pin(&ids, !args.unpin)?;
    println!("{} {changed} run(s)", if args.unpin { "unpinned" } else { "pinned" });
    Ok(())
}
