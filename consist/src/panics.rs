//! Panics consist catches (a step body's, a Parquet decoder's on a corrupt file): reported once,
//! in the error they become, not also by Rust's default panic report.
//!
//! The first catch installs a panic hook that, for a panic raised on a thread while a catch is
//! under way there, keeps where it was raised instead of printing it, and hands every other panic
//! to the hook it replaced. The catch that the panic unwinds to names that place in its error; a
//! panic kept but caught by someone else (the step's own `catch_unwind`) is printed when the catch
//! ends, so no report is lost. With `RUST_BACKTRACE` set (not `0`) every panic is also reported
//! by the replaced hook at once, backtrace included. A panic on another thread (a thread pool's
//! worker) is reported there as usual; its error then says where only if it says so itself.

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, PanicHookInfo};
use std::sync::Once;

thread_local! {
    /// Whether this thread is inside [`catch`].
    static CATCHING: Cell<bool> = const { Cell::new(false) };
    /// Panics raised on this thread during the current catch, oldest first: (where, message).
    static RAISED: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
}

static HOOK: Once = Once::new();

/// Whether the user asked for panic reports with backtraces.
fn backtraces_wanted() -> bool {
    std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0")
}

fn install_hook() {
    // Setting a hook while this thread panics would panic (and poison the `Once`).
    if std::thread::panicking() {
        return;
    }
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info: &PanicHookInfo<'_>| {
            if CATCHING.get() {
                let at = info.location().map_or_else(|| "an unknown place".to_owned(), |l| l.to_string());
                RAISED.with_borrow_mut(|raised| raised.push((at, panic_message(info.payload()))));
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
    let outer_catching = CATCHING.replace(true);
    let outer_raised = RAISED.take();
    let result = std::panic::catch_unwind(AssertUnwindSafe(f));
    CATCHING.set(outer_catching);
    let mut raised = RAISED.replace(outer_raised);
    let outcome = match result {
        Ok(value) => Ok(value),
        Err(payload) => {
            let message = panic_message(payload.as_ref());
            // The last panic raised here is the one that unwound to us, unless it came from
            // another thread (resumed here), whose message differs.
            let ours = raised.last().is_some_and(|(_, m)| *m == message).then(|| raised.pop()).flatten();
            Err(match ours {
                Some((at, _)) => format!("panicked at {at}: {message}"),
                None => format!("panicked: {message}"),
            })
        }
    };
    if !backtraces_wanted() {
        for (at, message) in raised {
            eprintln!("consist: a panic at {at} was caught inside a step, which went on: {message}");
        }
    }
    outcome
}

/// The message of a caught panic's payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_panic_names_where_it_was_raised_and_only_that_one() {
        let err = catch(|| -> u8 { panic!("the model diverged") }).unwrap_err();
        assert!(
            err.starts_with("panicked at consist/src/panics.rs:") && err.ends_with(": the model diverged"),
            "{err}"
        );
        // A panic the body caught itself is not the one a later catch reports.
        let went_on = catch(|| std::panic::catch_unwind(|| panic!("probe")).is_err());
        assert_eq!(went_on, Ok(true));
        let err = catch(|| -> u8 { std::panic::resume_unwind(Box::new("resumed")) }).unwrap_err();
        assert_eq!(err, "panicked: resumed", "resume_unwind raises no new panic: no place to name");
        // A panic raised on another thread and resumed here: its message, no place.
        let err =
            catch(|| std::thread::spawn(|| panic!("elsewhere")).join().map_err(std::panic::resume_unwind)).unwrap_err();
        assert_eq!(err, "panicked: elsewhere");
        assert_eq!(catch(|| 7), Ok(7));
    }
}
