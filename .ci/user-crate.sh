#!/usr/bin/env bash
# consist used as a library user would: a crate outside the workspace with a path dependency,
# the README's dependency line and profile setting, built with the shared target directory.
# Then the stale-constant story end to end: editing a const a step uses is a miss that names it;
# a comment is not; nor is a variable the step reads from the environment while it runs. Prints the build time of the user's crate.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/consist-target}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/sir/src"
cp "$root/.ci/user-crate/src/main.rs" "$work/sir/src/main.rs"
# The same locked versions as the workspace, so the shared target directory is reused.
cp "$root/Cargo.lock" "$work/sir/Cargo.lock"
cat > "$work/sir/Cargo.toml" <<TOML
[package]
name = "sir-user"
version = "0.1.0"
edition = "2024"
publish = false

[dependencies]
consist = { path = "$root/consist" }

# As the README says: dependencies (DuckDB's C++ above all) at -O2 in the dev profile.
[profile.dev.package."*"]
opt-level = 2
debug = false
TOML
cd "$work/sir"
build() {
  local t0=$SECONDS
  cargo build --quiet
  echo "  built in $((SECONDS - t0)) s"
}
run() { "$CARGO_TARGET_DIR/debug/sir-user" "$work/runs"; }
expect() { grep -qF -- "$2" <<<"$1" || { echo "expected '$2' in:"; echo "$1"; exit 1; }; }

echo "-- first build of a user's crate (dependencies already built)"
build
out=$(run); echo "$out"
expect "$out" "executed 61, hits 0"
out=$(run); echo "$out"
expect "$out" "executed 0, hits 61"

echo "-- a comment and a layout change: still all hits"
sed -i 's|^const CONTACT_SCALE: f64 = 1.0;|const CONTACT_SCALE: f64 =\n    1.0; // unchanged|' src/main.rs
build
out=$(run); echo "$out"
expect "$out" "executed 0, hits 61"

echo "-- CONTACT_SCALE 1.0 -> 2.0: every day misses, naming the constant"
sed -i 's|    1.0; // unchanged|    2.0;|' src/main.rs
build
out=$(run); echo "$out"
expect "$out" "executed 60, hits 1"
expect "$out" "first miss: code changed: const CONTACT_SCALE"

echo "-- SIR_SEASON, read by the step while it runs, set to 1.5: every day misses, naming it"
out=$(SIR_SEASON=1.5 run); echo "$out"
expect "$out" "executed 60, hits 1"
expect "$out" "first miss: code changed: env SIR_SEASON at run time"
out=$(SIR_SEASON=1.5 run); echo "$out"
expect "$out" "executed 0, hits 61"
echo "user crate: ok"
