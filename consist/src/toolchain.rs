//! What built the code: the rustc release, the target, the profile and the `Cargo.lock` a step
//! was compiled with, recorded with each run (`meta.toolchain`).
//!
//! `#[step]` captures them when the user's crate compiles: the macro runs inside rustc, asks it
//! for its version and hashes the workspace's `Cargo.lock` (which rustc then tracks, so a lock
//! change recompiles the crate). Steps written with the builder API get the tracker's toolchain:
//! `Tracker::builder(..).toolchain(consist::toolchain!())`, or else what the process can tell at
//! run time (target and profile; rustc and the lock file unknown). By default the toolchain is
//! recorded, not hashed; `.toolchain_in_signature(true)` makes a compiler or dependency change
//! invalidate every step.

use serde::{Deserialize, Serialize};

/// The toolchain a step was compiled with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Toolchain {
    /// `rustc --version`, e.g. `rustc 1.91.0 (f8297e351 2025-10-28)`; `unknown` when not captured.
    pub rustc: String,
    /// The platform the binary runs on: architecture, OS and C library, e.g. `x86_64-linux-gnu`
    /// (`std::env::consts` and `cfg!(target_env)`; not rustc's full target triple).
    pub target: String,
    /// `debug` (debug assertions on) or `release`.
    pub profile: String,
    /// blake3 of the workspace's `Cargo.lock` (the locked dependency versions), when found.
    pub cargo_lock: Option<String>,
}

impl Toolchain {
    /// A toolchain captured at compile time (`#[step]`, [`crate::toolchain!`]); `cargo_lock` is
    /// empty when no lock file was found.
    pub fn captured(rustc: &str, cargo_lock: &str, debug_assertions: bool) -> Toolchain {
        Toolchain {
            rustc: rustc.to_owned(),
            target: target(),
            profile: if debug_assertions { "debug" } else { "release" }.to_owned(),
            cargo_lock: (!cargo_lock.is_empty()).then(|| cargo_lock.to_owned()),
        }
    }

    /// What this process can tell without a capture: the target, and the profile consist itself
    /// was compiled with (the same as the binary's unless a profile override says otherwise).
    pub fn at_run_time() -> Toolchain {
        Toolchain {
            rustc: "unknown".to_owned(),
            target: target(),
            profile: if cfg!(debug_assertions) { "debug" } else { "release" }.to_owned(),
            cargo_lock: None,
        }
    }

    /// `(field, value)` pairs, as a miss explanation lists them.
    pub(crate) fn fields(&self) -> [(&'static str, String); 4] {
        [
            ("rustc", self.rustc.clone()),
            ("target", self.target.clone()),
            ("profile", self.profile.clone()),
            ("cargo_lock", self.cargo_lock.clone().unwrap_or_else(|| "-".into())),
        ]
    }

    /// The text that joins a step's code identity under `toolchain_in_signature`.
    pub(crate) fn identity(&self) -> String {
        format!("{}\n{}\n{}\n{}", self.rustc, self.target, self.profile, self.cargo_lock.as_deref().unwrap_or("-"))
    }
}

fn target() -> String {
    let env = if cfg!(target_env = "gnu") {
        "-gnu"
    } else if cfg!(target_env = "musl") {
        "-musl"
    } else if cfg!(target_env = "msvc") {
        "-msvc"
    } else {
        ""
    };
    format!("{}-{}{env}", std::env::consts::ARCH, std::env::consts::OS)
}
