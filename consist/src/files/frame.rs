//! polars `DataFrame` <-> Parquet artifact files.

use std::path::Path;

use polars::prelude::{CsvReadOptions, DataFrame, ParquetReader, ParquetWriter, PolarsError, PolarsResult, SerReader};

use crate::artifact::{Artifact, Driver};
use crate::error::{Error, Result};

/// Write `df` as Parquet at `path`, durably and atomically (a temporary file, fsynced, renamed
/// over `path`: a killed step never leaves a torn Parquet file, and a symlink planted at `path`
/// is replaced, not followed).
pub(crate) fn write_parquet(key: &str, df: &mut DataFrame, path: &Path) -> Result<()> {
    let mut failure = None;
    crate::files::atomic::write_atomic_with(path, true, |file| {
        ParquetWriter::new(file).finish(df).map(drop).map_err(|e| {
            let message = e.to_string();
            failure = Some(e);
            std::io::Error::other(message)
        })
    })
    .map_err(|io| match failure {
        Some(source) => Error::Frame { key: key.to_owned(), path: path.to_path_buf(), source },
        None => Error::io("writing parquet output", path)(io),
    })
}

/// Run a polars reader, turning a panic inside it into an error: a corrupt Parquet file can make
/// the decoder panic ("invalid num_bits", "thrift bool field"...), and that must never take the
/// caller down.
fn guarded<T>(key: &str, path: &Path, read: impl FnOnce() -> PolarsResult<T>) -> Result<T> {
    let result = crate::panics::catch(read).unwrap_or_else(|panic| {
        Err(PolarsError::ComputeError(format!("the file is corrupt (the reader {panic})").into()))
    });
    result.map_err(|source| Error::Frame { key: key.to_owned(), path: path.to_path_buf(), source })
}

/// Read a Parquet file into a `DataFrame` (a corrupt file is an error, never a panic).
pub fn read_parquet(key: &str, path: &Path) -> Result<DataFrame> {
    let file = std::fs::File::open(path).map_err(Error::io("opening parquet artifact", path))?;
    guarded(key, path, || ParquetReader::new(file).finish())
}

/// Check, without decoding its data, that a recorded frame can be read: a Parquet file's footer
/// (its schema) must parse, a CSV file must exist. What a cache hit checks of a frame whose load
/// it leaves to the first read, so that an output recorded as something else (a step whose
/// return type changed) or a file whose footer rotted is a miss, not an error at every read.
pub(crate) fn check(artifact: &Artifact) -> Result<()> {
    let file = std::fs::File::open(&artifact.path).map_err(|_| Error::output_missing(artifact))?;
    match artifact.driver {
        Driver::Csv => Ok(()),
        _ => guarded(&artifact.key, &artifact.path, || ParquetReader::new(file).schema().map(drop)),
    }
}

/// Load a Parquet or CSV artifact as a `DataFrame`.
pub(crate) fn load(artifact: &Artifact) -> Result<DataFrame> {
    match artifact.driver {
        Driver::Csv => guarded(&artifact.key, &artifact.path, || {
            CsvReadOptions::default()
                .with_has_header(true)
                .try_into_reader_with_file_path(Some(artifact.path.clone()))
                .and_then(|reader| reader.finish())
        }),
        _ => read_parquet(&artifact.key, &artifact.path),
    }
}
