//! The code-identity analyzer: which items of its crate a `#[step]` or `#[helper]` uses, and
//! their token hashes. Beside it, `args.rs` and `params.rs` read the attribute and the function,
//! and `expand.rs` writes the generated code.
//!
//! Layered without cycles: [`scope`] (what a step covers) drives [`names`] (the identifiers code
//! refers to and the names items are found under), [`modules`] (the modules of the crate, paths
//! and imports), [`includes`] (files baked in), [`build_facts`] (`cfg` and `env!` values) and
//! [`hash`] (the token walk); [`crate_tree`] finds and parses the crate's files (with
//! [`macro_mods`], the modules macro calls declare), [`open_modules`] the inline modules open at
//! a line, and [`item`] names an item. Leaves import nothing above them.

pub(crate) mod build_facts;
pub(crate) mod crate_tree;
pub(crate) mod hash;
pub(crate) mod includes;
pub(crate) mod item;
pub(crate) mod macro_mods;
pub(crate) mod modules;
pub(crate) mod names;
pub(crate) mod open_modules;
pub(crate) mod scope;
