//! Logging through `tracing`: consist's warnings reach stderr even when the program installed no
//! subscriber, and [`init_logging`] shows cache decisions, filtered by `CONSIST_LOG` or `RUST_LOG`.

use std::sync::OnceLock;

use tracing::Dispatch;

/// The filter of a log spec, or `fallback` (with a note on stderr) when the spec does not parse.
fn filter(spec: &str, fallback: &str) -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_new(spec).unwrap_or_else(|e| {
        eprintln!("consist: ignoring log filter `{spec}` ({e}); using `{fallback}`");
        tracing_subscriber::EnvFilter::new(fallback)
    })
}

fn colour() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none()
}

/// Install a `tracing` subscriber that prints to stderr, filtered by `CONSIST_LOG` (or, if unset,
/// `RUST_LOG`; default `warn`). `CONSIST_LOG=consist=debug` shows every cache hit and every miss
/// with its reason. Does nothing if the program already installed a subscriber.
pub fn init_logging() {
    let spec = std::env::var("CONSIST_LOG").or_else(|_| std::env::var("RUST_LOG")).unwrap_or_else(|_| "warn".into());
    let subscriber = tracing_subscriber::fmt().with_env_filter(filter(&spec, "warn")).with_ansi(colour());
    let _ = subscriber.with_writer(std::io::stderr).try_init();
}

/// Emit `event` (a `tracing` warning of consist's) so that a user sees it: through the program's
/// subscriber if it has one, else on stderr (filtered by `CONSIST_LOG`: `CONSIST_LOG=off`
/// silences consist's warnings). The stderr subscriber is set for the event's duration only, but
/// `tracing` then counts a dispatcher as set: a program that relies on `tracing`'s `log` feature
/// (events forwarded to a `log` logger while no subscriber exists) stops getting that forwarding
/// after consist's first warning; such a program should install a `tracing` subscriber.
pub(crate) fn visible(event: impl FnOnce()) {
    let subscribed = tracing::dispatcher::get_default(|d| !d.is::<tracing::subscriber::NoSubscriber>());
    if subscribed {
        return event();
    }
    static STDERR: OnceLock<Dispatch> = OnceLock::new();
    let stderr = STDERR.get_or_init(|| {
        let spec = std::env::var("CONSIST_LOG").unwrap_or_else(|_| "warn".into());
        let subscriber = tracing_subscriber::fmt().with_env_filter(filter(&spec, "warn")).with_ansi(colour());
        Dispatch::new(subscriber.with_writer(std::io::stderr).without_time().finish())
    });
    tracing::dispatcher::with_default(stderr, event)
}

/// `tracing::warn!` that reaches stderr when the program installed no subscriber (see
/// [`visible`]): every warning of consist's goes through it.
macro_rules! warning {
    ($($event:tt)*) => {
        $crate::logging::visible(|| ::tracing::warn!($($event)*))
    };
}
pub(crate) use warning;
