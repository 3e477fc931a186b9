//! Panics consist catches (a step body's, a Parquet decoder's on a corrupt file): reported once,
//! in the error they become, not also by Rust's default panic report.
//!
//! The first catch installs a panic hook that keeps the location of a panic raised while a catch
//! is under way on this thread, and hands every other panic to the hook it replaced. With
//! `RUST_BACKTRACE` set (not `0`) a caught panic is also reported by that hook, backtrace included.

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, PanicHookInfo};
use std::sync::Once;

thread_local! {
    /// Whether this thread is inside [`catch`].
    static CATCHING: Cell<bool> = const { Cell::new(false) };
    /// Where the panic being caught was raised (`file:line:column`).
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// Whether the user asked for panic reports with backtraces.
fn backtraces_wanted() -> bool {
    std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0")
}

fn install_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info: &PanicHookInfo<'_>| {
            if CATCHING.get() {
                LOCATION.set(info.location().map(|l| l.to_string()));
                if !backtraces_wanted() {
                    return;
                }
            }
            previous(info)
        }));
    });
}

/// Run `f`; a panic inside it becomes `Err("panicked at src/model.rs:12:5: <message>")`.
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    install_hook();
    let outer = CATCHING.replace(true);
    let result = std::panic::catch_unwind(AssertUnwindSafe(f));
    CATCHING.set(outer);
    result.map_err(|payload| {
        let message = panic_message(payload.as_ref());
        match LOCATION.take() {
            Some(at) => format!("panicked at {at}: {message}"),
            None => format!("panicked: {message}"),
        }
    })
}

/// The message of a caught panic's payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}
