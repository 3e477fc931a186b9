//! `consist ui`: serve the catalog's pages on this machine, or write them as a static site.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::Cli;
use super::error::Result;
use crate::ui::{UiOptions, serve, write_static};

/// Options of `consist ui`.
#[derive(Debug, Args)]
pub struct UiArgs {
    /// The address to listen on; other machines reach the page only if this is not loopback.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// The port (0: a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// How often an open runs page asks for new runs, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub poll_ms: u64,
    /// Write the pages as HTML files into this directory instead of serving them.
    #[arg(long = "static", value_name = "DIR")]
    pub static_dir: Option<PathBuf>,
    /// With --static: the newest this many runs get pages (at most 500).
    #[arg(long, default_value_t = crate::ui::STATIC_RUNS)]
    pub limit: usize,
}

pub(super) fn run(cli: &Cli, args: &UiArgs) -> Result<()> {
    let catalog = cli.existing_catalog()?;
    if let Some(dir) = &args.static_dir {
        let report = write_static(&catalog, dir, args.limit)?;
        println!(
            "wrote {} files for {} of {} runs to {} (open index.html)",
            report.files,
            report.runs,
            report.total,
            report.dir.display()
        );
        return Ok(());
    }
    let options = UiOptions {
        host: args.host.clone(),
        port: args.port,
        poll: std::time::Duration::from_millis(args.poll_ms.max(100)),
    };
    let location = catalog.location().to_string();
    serve(catalog, &options, |address| {
        println!("consist ui: http://{address}/ (catalog {location}; read-only; Ctrl-C stops)");
        let _ = std::io::stdout().flush();
    })?;
    Ok(())
}
