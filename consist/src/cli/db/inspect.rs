//! `consist db inspect`: table counts, zombies, orphaned rows, pending and unportable runs.

use super::super::error::Result;
use super::super::{Cli, print_json, table};

pub(super) fn run(cli: &Cli, json: bool) -> Result<()> {
    let catalog = cli.existing_catalog()?;
    let report = catalog.inspect()?;
    if json {
        print_json(&report);
        return Ok(());
    }
    let mut t = table::new(&["table", "rows"]);
    for (name, count) in &report.tables {
        t.add_row([name.clone(), count.to_string()]);
    }
    println!("{t}");
    println!("database         {}", catalog.location());
    println!(
        "pending runs     {}{}",
        report.pending,
        if report.pending == 0 {
            ""
        } else {
            " (written with the next tracker that writes the database, or by `consist db sync`)"
        }
    );
    println!("orphan artifacts {}", report.orphan_artifacts);
    println!("dangling links   {}", report.dangling_links);
    println!("purged producers {}", report.missing_producers);
    println!(
        "zombie runs      {}{}",
        report.zombies.len(),
        if report.zombies.is_empty() { "" } else { " (status running, but their process on this host is gone):" }
    );
    for id in &report.zombies {
        println!("  {id}");
    }
    if !report.zombies.is_empty() {
        println!("  (mark them failed with `consist db fail-zombies`)");
    }
    println!(
        "damaged runs     {}{}",
        report.damaged.len(),
        if report.damaged.is_empty() { "" } else { " (their pending snapshot is unreadable; not in the catalog):" }
    );
    for d in &report.damaged {
        println!("  {} (run {}): {}", d.file.display(), d.run_id.as_deref().unwrap_or("?"), d.reason);
    }
    println!(
        "not portable     {}{}",
        report.not_portable_count,
        if report.not_portable.is_empty() {
            ""
        } else {
            " (recorded by absolute path: outside the run dir and every mount; add a mount to record such files portably):"
        }
    );
    for (key, uri) in &report.not_portable {
        println!("  {key}: {uri}");
    }
    if report.not_portable_count > report.not_portable.len() as i64 {
        println!("  ... and {} more", report.not_portable_count - report.not_portable.len() as i64);
    }
    Ok(())
}
