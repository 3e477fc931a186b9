//! `consist validate`: artifacts whose file is missing or whose bytes no longer match their hash.

use clap::Args;

use super::error::{CliError, Result};
use super::{Cli, print_json, table};

/// Options of `consist validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Only check that the files exist, not their content hashes (fast).
    #[arg(long)]
    pub exists_only: bool,
    /// Print JSON (the problems found) instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub(super) fn run(cli: &Cli, args: &ValidateArgs) -> Result<()> {
    let crate::admin::ValidationReport { checked, problems, evicted } =
        cli.existing_catalog()?.validate(args.exists_only)?;
    if args.json {
        print_json(&problems);
    } else if problems.is_empty() {
        println!(
            "all {checked} produced artifact(s) are present{}{}",
            if args.exists_only { "" } else { " and match their hashes" },
            if evicted > 0 { format!(" ({evicted} more freed by `db gc`, not checked)") } else { String::new() }
        );
    } else {
        let mut t = table::new(&["problem", "key", "artifact", "run", "path"]);
        for p in &problems {
            t.add_row([
                table::problem(p.problem.as_str()),
                table::cell(&p.key),
                table::cell(&p.id),
                table::cell(p.run_id.clone().unwrap_or_default()),
                table::cell(&p.path),
            ]);
        }
        println!("{t}");
    }
    if problems.is_empty() { Ok(()) } else { Err(CliError::Validation { failed: problems.len(), checked }) }
}
