//! The `consist` command line, also callable from a user's own binary as [`main`].

mod db;
mod runs;
mod steps;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::catalog::Catalog;
use crate::error::Error;

/// Inspect and maintain consist provenance.
#[derive(Debug, Parser)]
#[command(name = "consist", version, about)]
pub struct Cli {
    /// The provenance database [default: $CONSIST_DB, ./provenance.duckdb, ./runs/provenance.duckdb]
    #[arg(long, global = true, env = "CONSIST_DB")]
    pub db_path: Option<PathBuf>,

    /// Seconds to wait for a process that holds the database.
    #[arg(long, global = true, default_value_t = 10)]
    pub wait: u64,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List recent runs, newest first.
    Runs(runs::RunsArgs),
    /// The #[step] functions linked into this binary and whether their code changed.
    Steps(steps::StepsArgs),
    /// Maintain the database.
    #[command(subcommand)]
    Db(db::DbCommand),
}

impl Cli {
    fn db_path(&self) -> PathBuf {
        if let Some(p) = &self.db_path {
            return p.clone();
        }
        let candidates = [PathBuf::from("provenance.duckdb"), PathBuf::from("runs/provenance.duckdb")];
        candidates.iter().find(|p| p.exists()).unwrap_or(&candidates[0]).clone()
    }

    fn catalog(&self) -> Catalog {
        Catalog::duckdb(self.db_path(), Duration::from_secs(self.wait))
    }
}

/// Parse `std::env::args` and run the command; returns the process exit status
/// (0 success, 1 not found or failed, 2 usage error).
pub fn main() -> ExitCode {
    main_from(std::env::args_os())
}

/// Like [`main`], with explicit arguments (the first is the program name), so a user's own binary
/// can embed the CLI: `consist::cli::main_from(["consist", "runs"])`.
pub fn main_from<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Run a parsed command line.
pub fn run(cli: &Cli) -> Result<(), Error> {
    match &cli.command {
        Command::Runs(args) => runs::run(cli, args),
        Command::Steps(args) => steps::run(cli, args),
        Command::Db(cmd) => db::run(cli, cmd),
    }
}
