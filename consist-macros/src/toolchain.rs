//! The toolchain capture behind `#[step]` and `consist::toolchain!()`: evaluated once per crate
//! compilation, inside rustc, so it names the compiler and lock file of the user's build.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use proc_macro2::TokenStream;
use quote::quote;

struct Captured {
    rustc: String,
    lock: Option<(PathBuf, String)>,
}

fn captured() -> &'static Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED.get_or_init(|| Captured { rustc: rustc_version(), lock: cargo_lock() })
}

/// `rustc --version` of the compiler this macro runs in (the process is rustc, or a driver
/// such as clippy's that answers for it); `unknown` elsewhere (an IDE's macro server).
fn rustc_version() -> String {
    let unknown = || "unknown".to_owned();
    let Ok(exe) = std::env::current_exe() else { return unknown() };
    let name = exe.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if !(name.starts_with("rustc") || name.starts_with("clippy-driver")) {
        return unknown();
    }
    match std::process::Command::new(&exe).arg("--version").output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        _ => unknown(),
    }
}

/// The nearest `Cargo.lock` above the crate being compiled, and its blake3.
fn cargo_lock() -> Option<(PathBuf, String)> {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")?;
    let mut dir: Option<&Path> = Some(Path::new(&manifest));
    while let Some(d) = dir {
        let lock = d.join("Cargo.lock");
        if let Ok(bytes) = std::fs::read(&lock) {
            return Some((lock, blake3::hash(&bytes).to_hex().to_string()));
        }
        dir = d.parent();
    }
    None
}

/// An expression of type `::consist::Toolchain` for the crate being compiled. It names the lock
/// file in `include_bytes!` (in an unused constant: nothing is embedded) so that rustc records it
/// as an input and a changed lock file recompiles the crate.
pub fn expr() -> TokenStream {
    let c = captured();
    let rustc = &c.rustc;
    let (track, hash) = match &c.lock {
        // A path that is not UTF-8 cannot be named in `include_bytes!`: recorded, not tracked.
        Some((path, hash)) => match path.to_str() {
            Some(path) => (
                quote!(
                    const _: &[u8] = ::core::include_bytes!(#path);
                ),
                hash.clone(),
            ),
            None => (TokenStream::new(), hash.clone()),
        },
        None => (TokenStream::new(), String::new()),
    };
    quote!({
        #track
        ::consist::Toolchain::captured(#rustc, #hash, ::core::cfg!(debug_assertions))
    })
}
