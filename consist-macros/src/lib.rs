//! Procedural macros of consist: `#[step]` turns a plain function into a cached, tracked step,
//! `#[helper]` gives a function a code hash that steps can depend on (`uses = [...]`), and
//! `#[derive(Outputs)]` lets a struct carry several outputs.
//!
//! Use them through the `consist` crate (`consist::step`, `consist::helper`); this crate's
//! generated code calls `::consist::__private`, which is not public API.

mod args;
mod build_facts;
mod crate_tree;
mod derive;
mod expand;
mod hash;
mod includes;
mod modules;
mod names;
mod open_modules;
mod params;
mod scope;

use proc_macro::TokenStream;

/// The source file this macro is expanded in and the line of the attribute, when the compiler
/// knows them (the code identity follows the items of that file's module that the annotated item
/// uses; see `scope.rs`).
fn source_file() -> Option<scope::Source> {
    let span = proc_macro::Span::call_site();
    span.local_file().map(|path| scope::Source { path, line: span.line() })
}

/// Make a function a consist step. See the `consist` crate documentation (`consist::step`).
#[proc_macro_attribute]
pub fn step(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::step(attr.into(), item.into(), source_file()).into()
}

/// Implement `consist::Outputs` for a struct whose fields are outputs (`DataFrame`, `PathBuf`,
/// `Value<T>`), one output key per field, in field order. See the `consist` crate documentation.
#[proc_macro_derive(Outputs)]
pub fn derive_outputs(item: TokenStream) -> TokenStream {
    derive::outputs(item.into()).into()
}

/// Give an item of another module (a function, const, static, struct, enum, union, type alias
/// or trait) a code hash, so steps that declare `uses = [path::to::item]` are invalidated when it
/// changes. See the `consist` crate documentation (`consist::helper`).
#[proc_macro_attribute]
pub fn helper(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::helper(attr.into(), item.into(), source_file()).into()
}
