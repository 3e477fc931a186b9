//! The command line's error: a library error, or a mistake only a command line can make.

use crate::error::Error;

/// Why a command failed: the library's error, a usage mistake, or validation failures.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// An error of the library (a missing run, a busy database...).
    #[error(transparent)]
    Consist(#[from] Error),

    /// A command was used wrongly (a bad value, nothing selected to purge...).
    #[error("{0}")]
    Usage(String),

    /// A command did its work but could not finish all of it (e.g. runs a rebuild could not
    /// restore); the message lists what is left.
    #[error("{0}")]
    Incomplete(String),

    /// `consist validate` found artifacts whose files are missing or modified.
    #[error("{failed} of {checked} artifact(s) failed validation; re-run their producers to recreate them")]
    Validation {
        /// How many failed.
        failed: usize,
        /// How many were checked.
        checked: usize,
    },
}

impl CliError {
    /// The exit status: 2 for usage errors (an ambiguous run id prefix, a refused query and a
    /// merge of a catalog into itself included), 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_)
            | CliError::Consist(Error::AmbiguousRun { .. } | Error::Query { .. } | Error::SameCatalog { .. }) => 2,
            _ => 1,
        }
    }
}

/// The result of a command.
pub type Result<T = ()> = std::result::Result<T, CliError>;
