//! Opt-in logging of cache decisions through `tracing`, filtered by `CONSIST_LOG` or `RUST_LOG`.

/// Install a `tracing` subscriber that prints to stderr, filtered by `CONSIST_LOG` (or, if unset,
/// `RUST_LOG`; default `warn`). `CONSIST_LOG=consist=debug` shows every cache hit and every miss
/// with its reason. Does nothing if the program already installed a subscriber.
pub fn init_logging() {
    let spec = std::env::var("CONSIST_LOG").or_else(|_| std::env::var("RUST_LOG")).unwrap_or_else(|_| "warn".into());
    let filter = tracing_subscriber::EnvFilter::try_new(&spec).unwrap_or_else(|e| {
        eprintln!("consist: ignoring log filter `{spec}` ({e}); using `warn`");
        tracing_subscriber::EnvFilter::new("warn")
    });
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(colour).with_writer(std::io::stderr).try_init();
}
