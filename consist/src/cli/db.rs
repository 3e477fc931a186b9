//! `consist db ...`: maintenance of the provenance database.

use std::path::PathBuf;

use clap::Subcommand;

use super::Cli;
use crate::error::Result;

/// Database maintenance commands.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Recreate the database content from the JSON snapshots.
    Rebuild {
        /// Where to look for snapshots, recursively [default: the database's directory].
        #[arg(long)]
        run_dir: Option<PathBuf>,
    },
}

pub(super) fn run(cli: &Cli, cmd: &DbCommand) -> Result<()> {
    match cmd {
        DbCommand::Rebuild { run_dir } => {
            let catalog = cli.catalog();
            let root = match run_dir {
                Some(dir) => dir.clone(),
                None => std::path::absolute(catalog.db_path())
                    .ok()
                    .and_then(|p| p.parent().map(PathBuf::from))
                    .unwrap_or_else(|| PathBuf::from(".")),
            };
            let restored = catalog.rebuild(&root)?;
            println!(
                "restored {restored} run(s) from snapshots under {} into {}",
                root.display(),
                catalog.db_path().display()
            );
            Ok(())
        }
    }
}
