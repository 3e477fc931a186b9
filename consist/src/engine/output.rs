//! How a step's return value maps onto its declared output keys, and comes back on a cache hit.
//!
//! | returned type | stored as | on a cache hit |
//! |---|---|---|
//! | `polars::DataFrame` | Parquet file | read back when first read (Parquet, or CSV for CSV inputs) |
//! | `PathBuf` | the file it names (hashed) | the recorded path |
//! | [`Dir`] | the directory it names (its tree hashed) | the recorded directory |
//! | [`crate::FrameSet`] | one Parquet file per member and a manifest, in a directory | read back, each member checked |
//! | [`Value<T>`] (`T: Serialize + DeserializeOwned`) | value codec file (`.bin`) | decoded, typed |
//! | `(A, B, ...)` of the above | one artifact per key, in order | each element |
//! | a struct with `#[derive(Outputs)]` | one artifact per field, in order | each field |
//! | `()` | whatever the step logged through its context | `()` |

use std::collections::BTreeMap;
use std::path::PathBuf;

use polars::prelude::DataFrame;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::artifact::Artifact;
use crate::engine::context::StepContext;
use crate::error::{Error, Result};

/// A typed value output, stored with the value codec and returned typed on a cache hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Value<T>(pub T);

impl<T> Value<T> {
    /// The wrapped value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// One output artifact.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be stored as one step output",
    note = "an output is a `DataFrame`, a `PathBuf`, or a serde value wrapped in `consist::Value(...)` \
            (`#[step]` wraps a plain value itself)",
    note = "a step with several `outputs` keys returns a tuple with one element per key, or a struct \
            with `#[derive(consist::Outputs)]`"
)]
pub trait Output: Sized {
    /// Whether a cache hit leaves loading this output (and the value holding it) to the first
    /// read of the run's value ([`crate::RunResult::value`]) instead of loading it with the hit:
    /// for outputs whose load costs far more than a hit (a frame), and that a step feeding later
    /// steps never reads. The hit still checks every output ([`Output::check`]); one that fails
    /// makes the hit a miss that executes.
    const DEFERRED: bool = false;
    /// Check, at a cache hit, that the recorded output can be loaded as `Self` (a failure makes
    /// the hit a miss). By default it is loaded and dropped; a [`Output::DEFERRED`] output
    /// checks what it can without the full read.
    fn check(artifact: &Artifact) -> Result<()> {
        Self::load(artifact).map(drop)
    }
    /// Write (or register) the output under `key` in the running step (through the context's
    /// `log_*` methods, which add it to the run's outputs).
    fn record(&mut self, key: &str, ctx: &mut StepContext<'_>) -> Result<Artifact>;
    /// Rebuild the output from its recorded artifact (on a cache hit).
    fn load(artifact: &Artifact) -> Result<Self>;
}

impl Output for DataFrame {
    const DEFERRED: bool = true;

    fn check(artifact: &Artifact) -> Result<()> {
        crate::files::frame::check(artifact)
    }

    fn record(&mut self, key: &str, ctx: &mut StepContext<'_>) -> Result<Artifact> {
        ctx.log_frame(key, self)
    }

    fn load(artifact: &Artifact) -> Result<Self> {
        if !artifact.path.exists() {
            return Err(Error::output_missing(artifact));
        }
        crate::files::frame::load(artifact)
    }
}

impl Output for PathBuf {
    fn record(&mut self, key: &str, ctx: &mut StepContext<'_>) -> Result<Artifact> {
        ctx.log_file(key, self)
    }

    fn load(artifact: &Artifact) -> Result<Self> {
        if !artifact.path.exists() {
            return Err(Error::output_missing(artifact));
        }
        Ok(artifact.path.clone())
    }
}

/// A directory output (a Zarr store, a shapefile set, a model's output folder): the step writes
/// it (under [`StepContext::output_dir`]) and returns its path; identity, checks and consumers
/// as [`StepContext::log_dir`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Dir(pub PathBuf);

impl std::ops::Deref for Dir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::path::Path> for Dir {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Output for Dir {
    fn record(&mut self, key: &str, ctx: &mut StepContext<'_>) -> Result<Artifact> {
        ctx.log_dir(key, &self.0)
    }

    fn load(artifact: &Artifact) -> Result<Self> {
        if !artifact.path.is_dir() {
            return Err(Error::output_missing(artifact));
        }
        Ok(Dir(artifact.path.clone()))
    }
}

impl<T: Serialize + DeserializeOwned> Output for Value<T> {
    fn record(&mut self, key: &str, ctx: &mut StepContext<'_>) -> Result<Artifact> {
        ctx.log_value(key, &self.0)
    }

    fn load(artifact: &Artifact) -> Result<Self> {
        let bytes = std::fs::read(&artifact.path).map_err(|_| Error::output_missing(artifact))?;
        crate::files::codec::decode(&artifact.key, &artifact.meta, &bytes).map(Value)
    }
}

/// A step's whole return value: zero or more outputs matched to the declared keys in order.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a step's outputs",
    note = "a step returns one output (`DataFrame`, `PathBuf`, `consist::Value<T>`), a tuple of them \
            with one element per `outputs` key, or a struct with `#[derive(consist::Outputs)]`"
)]
pub trait Outputs: Sized {
    /// How many keys the value fills; 0 means outputs are logged by hand through the context.
    const ARITY: usize;
    /// Whether a cache hit defers loading the value to its first read: if any output does
    /// ([`Output::DEFERRED`]).
    const DEFERRED: bool = false;
    /// Record every output under its key.
    fn record(&mut self, keys: &[String], ctx: &mut StepContext<'_>) -> Result<()>;
    /// Rebuild the value from the recorded artifacts, by key.
    fn load(keys: &[String], recorded: &BTreeMap<String, Artifact>) -> Result<Self>;
    /// Check, at a cache hit whose load is deferred, that every output can be loaded
    /// ([`Output::check`]); by default the value is loaded and dropped.
    fn check(keys: &[String], recorded: &BTreeMap<String, Artifact>) -> Result<()> {
        Self::load(keys, recorded).map(drop)
    }
}

/// Check the output recorded under `key` as `T` (what `#[derive(Outputs)]` calls per field).
pub fn check_recorded<T: Output>(key: &str, recorded: &BTreeMap<String, Artifact>) -> Result<()> {
    let artifact = recorded.get(key).ok_or_else(|| crate::names::unknown_key("output", key, recorded.keys()))?;
    T::check(artifact)
}

/// Load the output recorded under `key` as `T` (also what `#[derive(Outputs)]` calls per field).
pub fn load_recorded<T: Output>(key: &str, recorded: &BTreeMap<String, Artifact>) -> Result<T> {
    let artifact = recorded.get(key).ok_or_else(|| crate::names::unknown_key("output", key, recorded.keys()))?;
    T::load(artifact)
}

impl<T: Output> Outputs for T {
    const ARITY: usize = 1;
    const DEFERRED: bool = T::DEFERRED;

    fn record(&mut self, keys: &[String], ctx: &mut StepContext<'_>) -> Result<()> {
        Output::record(self, &keys[0], ctx).map(drop)
    }

    fn load(keys: &[String], found: &BTreeMap<String, Artifact>) -> Result<Self> {
        load_recorded(&keys[0], found)
    }

    fn check(keys: &[String], found: &BTreeMap<String, Artifact>) -> Result<()> {
        check_recorded::<T>(&keys[0], found)
    }
}

impl Outputs for () {
    const ARITY: usize = 0;

    fn record(&mut self, _keys: &[String], _ctx: &mut StepContext<'_>) -> Result<()> {
        Ok(())
    }

    fn load(_keys: &[String], _found: &BTreeMap<String, Artifact>) -> Result<Self> {
        Ok(())
    }
}

macro_rules! tuple_outputs {
    ($n:expr; $($name:ident $idx:tt),+) => {
        impl<$($name: Output),+> Outputs for ($($name,)+) {
            const ARITY: usize = $n;
            const DEFERRED: bool = false $(|| $name::DEFERRED)+;

            fn record(&mut self, keys: &[String], ctx: &mut StepContext<'_>) -> Result<()> {
                $(
                    Output::record(&mut self.$idx, &keys[$idx], ctx)?;
                )+
                Ok(())
            }

            fn load(keys: &[String], found: &BTreeMap<String, Artifact>) -> Result<Self> {
                Ok(($(load_recorded::<$name>(&keys[$idx], found)?,)+))
            }

            fn check(keys: &[String], found: &BTreeMap<String, Artifact>) -> Result<()> {
                $(check_recorded::<$name>(&keys[$idx], found)?;)+
                Ok(())
            }
        }
    };
}

tuple_outputs!(2; A 0, B 1);
tuple_outputs!(3; A 0, B 1, C 2);
tuple_outputs!(4; A 0, B 1, C 2, D 3);
tuple_outputs!(5; A 0, B 1, C 2, D 3, E 4);
