//! Procedural macros of consist: `#[step]` turns a plain function into a cached, tracked step,
//! `#[helper]` gives a function a code hash that steps can depend on (`uses = [...]`), and
//! `#[derive(Outputs)]` lets a struct carry several outputs.
//!
//! Use them through the `consist` crate (`consist::step`, `consist::helper`); this crate's
//! generated code calls `::consist::__private`, which is not public API.

mod args;
mod derive;
mod expand;
mod identity;
mod params;
mod toolchain;

use proc_macro::TokenStream;

/// The source file this macro is expanded in and the line of the attribute, when the compiler
/// knows them (the code identity follows the items of that file's module that the annotated item
/// uses; see `scope.rs`).
fn source_file() -> Option<identity::scope::Source> {
    let span = proc_macro::Span::call_site();
    span.local_file().map(|path| identity::scope::Source { path, line: span.line() })
}

/// Make a plain function a cached, tracked step.
///
/// (This example is compiled as a doc test of the `consist` crate, which this macro needs.)
///
/// ```ignore
/// use consist::polars::prelude::*;
/// use consist::{StepResult, Tracker, step};
///
/// const SCALE: f64 = 2.0; // part of the code identity: editing it re-runs `scale`
///
/// #[step(outputs = ["scaled"])]
/// fn scale(raw: &DataFrame, factor: f64) -> StepResult<DataFrame> {
///     let scaled = raw.column("value")?.f64()? * (factor * SCALE);
///     let mut out = raw.clone();
///     out.with_column(scaled.into_column())?;
///     Ok(out)
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// let tracker = Tracker::builder("./runs").open()?;
/// let run = tracker.run(scale::step("data/raw.parquet", 1.5))?; // executes, or returns the cached frame
/// let next = tracker.run(scale::step(run.output("scaled")?, 2.0))?; // an output feeds a step
/// let frame: &DataFrame = next.value()?;   // typed, hit or not (a hit reads it now)
/// let again = scale(frame, 1.0)?;                                  // still a plain function
/// # Ok(()) }
/// ```
///
/// The function stays as written and callable without a tracker. Beside it, `#[step]` generates a
/// module of the same name: `scale::step(..)` prepares a tracked call for `Tracker::run` (the same
/// parameters, where an input takes a path or an `Artifact`, such as an earlier run's output), and
/// `scale::code_hash()` / `scale::code_items()` give its code identity.
///
/// # Options
/// - `outputs = ["key", ..]`: the output keys, one per returned output (required when it returns
///   one).
/// - `name = "..."`: the model name recorded for its runs (default: the function's name).
/// - `version = "2"`: bump the identity by hand (a change the code identity cannot see).
/// - `uses = [other_crate::item, ..]`: items of another crate of your workspace, each marked
///   `#[helper]`, whose identity joins this step's (code of this crate is followed without it).
///
/// # Parameters
/// - **Inputs** (each a Merkle link to the run that produced it): `&Path` / `PathBuf`,
///   `&DataFrame` / `DataFrame` (loaded from Parquet or CSV), `&Artifact` / `Artifact`;
///   `Option<&T>` of one of these (an input that may be absent; absence is part of the signature);
///   `&[T]` / `Vec<&T>` of one of these (an ordered list, one link per element);
///   `#[consist(input)] x: T` (a typed value artifact decoded into `T`; `&[T]` decodes a `Vec<T>`).
/// - **Config**: any other parameter, hashed as canonical JSON (`Serialize`; NaN is an error naming
///   the parameter). `#[consist(config)]` hashes a path as a value; `#[consist(runtime)]` passes a
///   parameter without hashing it (a thread count).
/// - **Context**: one `&mut StepContext` parameter gives the run's output directory and
///   `log_frame` / `log_file` / `log_value` for outputs logged by hand (the step returns `()`).
///
/// A type that mentions `DataFrame`, `Path` or `Artifact` in any other shape is a compile error
/// naming the supported ones.
///
/// # Return value
/// Optionally inside any `*Result<T>` (`StepResult`, `PolarsResult`, `io::Result`...): `DataFrame`
/// is stored as Parquet, `PathBuf` as the file, a tuple as one output per element, a struct with
/// `#[derive(Outputs)]` as one output per field, anything else as a typed value artifact
/// (`Serialize + DeserializeOwned`). Outputs are mapped by the type's **name**: write `DataFrame`,
/// not an alias of it (an alias is refused with a message saying so).
///
/// # Code identity
/// A blake3 walk of the function's tokens and, transitively, of every item of its crate that it
/// uses: consts, statics, functions, types, their `impl` blocks (found by type or by a called
/// method, in any file), traits, macros, files baked in with `include_str!`, and the `cfg` and
/// `env!` settings they depend on. Comments, formatting and lint attributes never count; any
/// other edit to a covered item does. Other crates are not followed (declare them with `uses`).
///
/// # Where to define it
/// At module level, as a free function: the generated `scale::step` calls `super::scale`, so a
/// step written inside a function body or an `impl` block is refused (write a free function that
/// calls the method). Generic and `async` functions are refused too.
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

/// The toolchain compiling this crate, as a `consist::Toolchain` value: the rustc release, the
/// target, the profile and a hash of the workspace's `Cargo.lock`. `#[step]` records it with
/// every run by itself; give it to a tracker for steps written with the builder API:
/// `Tracker::builder("runs").toolchain(consist::toolchain!())`.
#[proc_macro]
pub fn toolchain(input: TokenStream) -> TokenStream {
    if !input.is_empty() {
        return syn::Error::new(proc_macro2::Span::call_site(), "`toolchain!()` takes no arguments")
            .to_compile_error()
            .into();
    }
    toolchain::expr().into()
}

/// Give an item (a function, const, static, struct, enum, union, type alias or trait) a code
/// identity of its own: `item::code_hash()` for a closure step (`.code_hash(..)`), and, for an item
/// of another crate of your workspace, a step that declares `uses = [other_crate::item]` is
/// invalidated when it changes. Its identity follows what it uses in its own crate, as
/// `#[step]`'s does. Takes only `uses = [..]`.
#[proc_macro_attribute]
pub fn helper(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::helper(attr.into(), item.into(), source_file()).into()
}
