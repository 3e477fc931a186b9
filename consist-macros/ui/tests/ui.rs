//! Compile-fail tests of `#[step]` / `#[helper]`: each case's expected diagnostics are in the
//! `.stderr` file beside it (refresh with `TRYBUILD=overwrite cargo test -p consist-macros-ui`).
//! Pass cases run as ordinary integration tests in the workspace's `tests/it/steps.rs`, since
//! they need the `consist` runtime (trybuild would rebuild DuckDB in its own target directory).

#[test]
fn ui() {
    trybuild::TestCases::new().compile_fail("tests/fail/*.rs");
}
