//! `consist remote ...`: run outputs in an object store (`--remote URL` or `CONSIST_REMOTE`).

use std::path::PathBuf;

use clap::Subcommand;

use super::error::{CliError, Result};
use super::{Cli, print_json};
use crate::export::ExportScope;
use crate::remote::{KeepRuns, Remote, TransferReport};

/// The remote commands.
#[derive(Debug, Subcommand)]
pub enum RemoteCommand {
    /// Upload the outputs of runs that are on this host (a catalog made before the remote, or
    /// uploads that failed); what the remote holds already is skipped, so running it again
    /// finishes an interrupted push.
    Push(Selection),
    /// Download the outputs of runs that this host lacks into a run directory, where a tracker
    /// there finds them; each is checked against its hash.
    Pull {
        /// Which runs.
        #[command(flatten)]
        selection: Selection,
        /// The run directory to put them in (as `./outputs/<run>/...`).
        #[arg(long)]
        run_dir: PathBuf,
    },
    /// Where the outputs of runs are: on this host only, on the remote only, both, neither.
    Status {
        /// Which runs.
        #[command(flatten)]
        selection: Selection,
        /// A run directory whose copies count as on this host (where a tracker there finds them).
        #[arg(long)]
        run_dir: Option<PathBuf>,
    },
    /// Remove the objects no kept run references (outputs or inputs). Only for a remote this
    /// catalog owns: another catalog's objects are not known here.
    Gc {
        /// Whose objects to keep: all, model=NAME, tag=TAG or scenario=ID.
        #[arg(long, default_value = "all", value_parser = KeepRuns::parse)]
        keep_runs_of: KeepRuns,
        /// Keep objects written within this many seconds: a host uploads a run's outputs before
        /// the catalog hears of the run.
        #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
        min_age: u64,
        /// --dry-run, --yes, --json.
        #[command(flatten)]
        removal: super::Removal,
    },
}

/// Which runs a remote command is about (default: every run).
#[derive(Debug, clap::Args)]
pub struct Selection {
    /// One run (an id or a unique prefix).
    #[arg(long, conflicts_with = "scenario")]
    run: Option<String>,
    /// One scenario: its header run and every run in it.
    #[arg(long)]
    scenario: Option<String>,
    /// Every run (the default).
    #[arg(long, conflicts_with_all = ["run", "scenario"])]
    all: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

impl Selection {
    fn scope(&self) -> ExportScope {
        match (&self.run, &self.scenario) {
            (Some(run), _) => ExportScope::Run(run.clone()),
            (None, Some(scenario)) => ExportScope::Scenario(scenario.clone()),
            (None, None) => ExportScope::All,
        }
    }
}

fn remote(cli: &Cli) -> Result<Remote> {
    match &cli.remote {
        Some(url) => Ok(Remote::open(url, cli.read_only)?),
        None => Err(CliError::Usage("name the remote with --remote URL or CONSIST_REMOTE".into())),
    }
}

pub(super) fn run(cli: &Cli, cmd: &RemoteCommand) -> Result<()> {
    let catalog = cli.existing_catalog()?;
    let remote = remote(cli)?;
    match cmd {
        RemoteCommand::Push(selection) => {
            let items = catalog.pushable(&selection.scope())?;
            let report = with_progress(items.len(), "pushed", |done| remote.push(&items, done));
            print_report(&report, "pushed", remote.url(), selection.json)
        }
        RemoteCommand::Pull { selection, run_dir } => {
            let items = catalog.pullable(&remote, &selection.scope(), run_dir)?;
            let report = with_progress(items.len(), "pulled", |done| remote.pull(&items, done));
            print_report(&report, "pulled", remote.url(), selection.json)
        }
        RemoteCommand::Status { selection, run_dir } => {
            let status = remote.status(&catalog, &selection.scope(), run_dir.as_deref())?;
            if selection.json {
                print_json(&status);
            } else {
                println!("{} output(s) of the selected runs, by content, against {}:", status.outputs, remote.url());
                println!("  on this host only  {}", status.local_only);
                println!("  on the remote only {}", status.remote_only);
                println!("  on both            {}", status.both);
                println!("  on neither         {}", status.neither);
            }
            Ok(())
        }
        RemoteCommand::Gc { keep_runs_of, min_age, removal } => {
            let min_age = std::time::Duration::from_secs(*min_age);
            let super::Removal { dry_run, yes, json } = removal;
            if !dry_run && !yes {
                let plan = remote.gc(&catalog, keep_runs_of, min_age, true)?;
                let question =
                    format!("remove {} object(s) ({} bytes) from {}?", plan.removed, plan.bytes, remote.url());
                let refusal = format!(
                    "remote gc would remove {} object(s); pass --yes to confirm, or --dry-run to see the figures",
                    plan.removed
                );
                if plan.removed > 0 && !super::db::confirm(false, &question, &refusal)? {
                    return Ok(());
                }
            }
            let report = remote.gc(&catalog, keep_runs_of, min_age, *dry_run)?;
            if *json {
                print_json(&report);
            } else {
                let verb = if report.dry_run { "would remove" } else { "removed" };
                println!(
                    "{verb} {} of {} object(s) ({} bytes) from {}; {} kept, {} unreferenced but written within {}s",
                    report.removed,
                    report.objects,
                    report.bytes,
                    remote.url(),
                    report.kept,
                    report.recent,
                    min_age.as_secs()
                );
            }
            Ok(())
        }
    }
}

/// Run `transfer` with a progress bar on a terminal (of `total` files).
fn with_progress(
    total: usize,
    verb: &str,
    transfer: impl FnOnce(&(dyn Fn(u64) + Sync)) -> TransferReport,
) -> TransferReport {
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!("{{bar:30}} {{pos}}/{{len}} files {verb}, {{msg}}"))
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let bytes = std::sync::atomic::AtomicU64::new(0);
    let report = transfer(&|n| {
        let sum = bytes.fetch_add(n, std::sync::atomic::Ordering::Relaxed) + n;
        bar.set_message(indicatif::HumanBytes(sum).to_string());
        bar.inc(1);
    });
    bar.finish_and_clear();
    report
}

fn print_report(report: &TransferReport, verb: &str, url: &str, json: bool) -> Result<()> {
    if json {
        print_json(report);
    } else {
        println!(
            "{verb} {} file(s) ({}) with {url}; {} already there",
            report.moved,
            indicatif::HumanBytes(report.bytes),
            report.already
        );
        if !report.missing.is_empty() {
            println!("{} file(s) not on this host (their runs ran elsewhere):", report.missing.len());
            for path in report.missing.iter().take(10) {
                println!("  {}", path.display());
            }
        }
        for (path, reason) in &report.failed {
            eprintln!("failed: {}: {reason}", path.display());
        }
    }
    match report.failed.len() {
        0 => Ok(()),
        n => Err(CliError::Incomplete(format!(
            "{n} file(s) could not be transferred (listed above); run the same command again to retry them"
        ))),
    }
}
