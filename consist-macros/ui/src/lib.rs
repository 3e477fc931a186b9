//! Compile-fail tests of consist's macros live in `tests/`; this crate has no code.
