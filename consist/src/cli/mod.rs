//! The `consist` command line, also callable from a user's own binary as [`main`].
//!
//! Conventions: `--json` prints one JSON document on stdout (field names are the serde names of
//! the library's types: `Run`, `Artifact`, `RunRecord`...); tables otherwise. Errors go to stderr.
//! Exit status: 0 success, 1 not found or validation failures, 2 usage errors (including an
//! ambiguous run id prefix). The database is opened read-only for inspection, never held.

mod compare;
mod db;
mod error;
mod export;
mod lineage;
mod overview;
mod remote;
mod runs;
mod sql;
mod steps;
mod table;
mod ui;
mod validate;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand};

use self::error::{CliError, Result};
use crate::catalog::Catalog;
use crate::error::Error;
use crate::location::CatalogLocation;

/// Inspect, query, compare and maintain consist provenance.
#[derive(Debug, Parser)]
#[command(name = "consist", version, about)]
pub(crate) struct Cli {
    /// The catalog: a DuckDB file path [default: $CONSIST_DB, ./provenance.duckdb,
    /// ./runs/provenance.duckdb]
    #[arg(long, global = true, env = "CONSIST_DB")]
    pub db_path: Option<String>,

    /// Seconds to wait for a process that holds the database.
    #[arg(long, global = true, default_value_t = 10)]
    pub wait: u64,

    /// Where a mount's files are on this machine, as a tracker's `.mount(name, dir)`: artifacts
    /// recorded as `name://path` are found under `dir` (repeatable).
    #[arg(long = "mount", global = true, value_name = "NAME=DIR")]
    pub mounts: Vec<String>,

    /// The remote run outputs are kept in: s3://bucket/prefix, gs://, az://, http(s)://,
    /// file:///dir (credentials from the environment: AWS_*, GOOGLE_*, AZURE_*).
    #[arg(long, global = true, env = "CONSIST_REMOTE")]
    pub remote: Option<String>,

    /// Only read the remote, never write to it.
    #[arg(long, global = true)]
    pub read_only: bool,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// List recent runs, newest first.
    Runs(runs::RunsArgs),
    /// Everything about one run: identity, config, facets, meta, inputs and outputs.
    Show(runs::ShowArgs),
    /// The artifacts of one run: direction, key, id, URI, driver, hash, whether the file exists.
    Artifacts(runs::ArtifactsArgs),
    /// Runs whose id, model, tags, description or config mention a text.
    Search(runs::SearchArgs),
    /// Counts, date range, runs per model, cache-hit ratio.
    Summary(overview::SummaryArgs),
    /// Scenarios (header runs) with their child counts.
    Scenarios(overview::ScenariosArgs),
    /// One scenario's runs, by iteration.
    Scenario(overview::ScenarioArgs),
    /// The lineage tree of an artifact (by id, or the newest with a key).
    Lineage(lineage::LineageArgs),
    /// The first rows of a Parquet or CSV artifact.
    Preview(sql::PreviewArgs),
    /// What differs between two runs: code, config keys, inputs.
    Diff(compare::DiffArgs),
    /// Why a run was, or was not, a cache hit.
    Explain(compare::ExplainArgs),
    /// Read-only SQL over the provenance tables and the artifact views (see `views`).
    Query(sql::QueryArgs),
    /// The artifact views `query` offers: one per key, unioning its Parquet/CSV files across runs.
    Views(sql::ViewsArgs),
    /// Artifacts whose file is missing or whose bytes no longer match the recorded hash.
    Validate(validate::ValidateArgs),
    /// The step functions linked into this binary and whether their code changed.
    Steps(steps::StepsArgs),
    /// The runs as OpenLineage events, a W3C PROV-JSON document or a Workflow Run RO-Crate.
    Export(export::ExportArgs),
    /// Keep runs' output files from `db gc` (or, with --unpin, stop keeping them).
    Pin(db::gc::PinArgs),
    /// Maintain the database.
    #[command(subcommand)]
    Db(db::DbCommand),
    /// Run outputs in an object store: push, pull, status, gc.
    #[command(subcommand)]
    Remote(remote::RemoteCommand),
    /// A local web page over the runs, lineage and scenarios (read-only), or `--static DIR`.
    Ui(ui::UiArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

impl Cli {
    /// The catalog's location: `--db-path`, `$CONSIST_DB`, then the first of
    /// `./provenance.duckdb`, `./runs/provenance.duckdb` that exists.
    fn location(&self) -> Result<CatalogLocation> {
        if let Some(location) = &self.db_path {
            return Ok(CatalogLocation::parse(location)?);
        }
        let candidates = [PathBuf::from("provenance.duckdb"), PathBuf::from("runs/provenance.duckdb")];
        Ok(CatalogLocation::DuckDb(candidates.iter().find(|p| p.exists()).unwrap_or(&candidates[0]).clone()))
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.wait)
    }

    fn catalog(&self) -> Result<Catalog> {
        let mut mounts = crate::mounts::Mounts::default();
        for mount in &self.mounts {
            let (name, dir) = mount.split_once('=').ok_or_else(|| {
                CliError::Usage(format!("--mount {mount}: write it as NAME=DIR, e.g. inputs=/data/shared"))
            })?;
            mounts.add(name, Path::new(dir))?;
        }
        Ok(Catalog::open(&self.location()?, self.timeout())?.with_mounts(mounts))
    }

    /// The catalog, which must hold something (else a clear "no such database" error).
    fn existing_catalog(&self) -> Result<Catalog> {
        let catalog = self.catalog()?;
        if !catalog.exists() {
            return Err(Error::no_database(catalog.db_path()).into());
        }
        Ok(catalog)
    }
}

/// The flags of a command that removes things for good (`db purge`, `remote gc`).
#[derive(Debug, clap::Args)]
pub(crate) struct Removal {
    /// Show what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long, short)]
    pub yes: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Parse a `--status` value.
fn parse_status(s: &str) -> std::result::Result<crate::run::RunStatus, String> {
    crate::run::RunStatus::parse(s)
        .ok_or_else(|| format!("unknown status `{s}`; use one of: running, completed, failed"))
}

/// Print `value` as one pretty JSON document.
fn print_json<T: serde::Serialize + ?Sized>(value: &T) {
    println!("{}", serde_json::to_string_pretty(value).expect("CLI output serializes"));
}

/// Parse `std::env::args` and run the command; returns the process exit status
/// (0 success, 1 not found or failed, 2 usage error) for `main` to return: it does not exit.
#[must_use = "return this ExitCode from `main`: the CLI does not exit by itself"]
pub fn main() -> ExitCode {
    main_from(std::env::args_os())
}

/// Like [`main`], with explicit arguments (the first is the program name), so a user's own binary
/// can embed the CLI: `consist::cli::main_from(["consist", "runs"])`. Both are meant to be the
/// process's main: they restore SIGPIPE's default, so `consist runs | head` ends quietly, as shell
/// tools do, instead of panicking on the write to the closed pipe (Rust ignores SIGPIPE).
#[must_use = "return this ExitCode from `main`: the CLI does not exit by itself"]
pub fn main_from<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to its default has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    crate::logging::init_logging();
    let result = run(&cli);
    crate::store::settle_before_exit();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Consist(Error::DatabaseBusy { path, waited_ms, reason })) => {
            // The library's advice names its builder option; a command line user has `--wait`.
            eprintln!(
                "error: database {} stayed locked by another process for {waited_ms} ms ({reason}); retry, or wait \
                 longer with `consist --wait SECONDS ...` (now {})",
                path.display(),
                cli.wait
            );
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Run a parsed command line.
pub(crate) fn run(cli: &Cli) -> Result<()> {
    match &cli.command {
        Command::Runs(args) => runs::runs(cli, args),
        Command::Show(args) => runs::show(cli, args),
        Command::Artifacts(args) => runs::artifacts(cli, args),
        Command::Search(args) => runs::search(cli, args),
        Command::Summary(args) => overview::summary(cli, args),
        Command::Scenarios(args) => overview::scenarios(cli, args),
        Command::Scenario(args) => overview::scenario(cli, args),
        Command::Lineage(args) => lineage::run(cli, args),
        Command::Preview(args) => sql::preview(cli, args),
        Command::Diff(args) => compare::diff(cli, args),
        Command::Explain(args) => compare::explain(cli, args),
        Command::Query(args) => sql::query(cli, args),
        Command::Views(args) => sql::views(cli, args),
        Command::Validate(args) => validate::run(cli, args),
        Command::Steps(args) => steps::run(cli, args),
        Command::Export(args) => export::run(cli, args),
        Command::Pin(args) => db::gc::pin(cli, args),
        Command::Ui(args) => ui::run(cli, args),
        Command::Db(cmd) => db::run(cli, cmd),
        Command::Remote(cmd) => remote::run(cli, cmd),
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "consist", &mut std::io::stdout());
            Ok(())
        }
    }
}
