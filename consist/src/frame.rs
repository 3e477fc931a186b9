//! polars `DataFrame` <-> Parquet artifact files.

use std::path::Path;

use polars::prelude::{CsvReadOptions, DataFrame, ParquetReader, ParquetWriter, SerReader};

use crate::artifact::{Artifact, Driver};
use crate::error::{Error, Result};

/// Write `df` as Parquet at `path`, durably (fsync before returning).
pub(crate) fn write_parquet(key: &str, df: &mut DataFrame, path: &Path) -> Result<()> {
    let file = std::fs::File::create(path).map_err(Error::io("creating parquet output", path))?;
    let frame_err = |source| Error::Frame { key: key.to_owned(), path: path.to_path_buf(), source };
    let file_ref = &file;
    ParquetWriter::new(file_ref).finish(df).map_err(frame_err)?;
    file.sync_all().map_err(Error::io("syncing parquet output", path))
}

/// Read a Parquet file into a `DataFrame`.
pub fn read_parquet(key: &str, path: &Path) -> Result<DataFrame> {
    let file = std::fs::File::open(path).map_err(Error::io("opening parquet artifact", path))?;
    ParquetReader::new(file).finish().map_err(|source| Error::Frame {
        key: key.to_owned(),
        path: path.to_path_buf(),
        source,
    })
}

/// Load a Parquet or CSV artifact as a `DataFrame`.
pub(crate) fn load(artifact: &Artifact) -> Result<DataFrame> {
    match artifact.driver {
        Driver::Csv => CsvReadOptions::default()
            .with_has_header(true)
            .try_into_reader_with_file_path(Some(artifact.path.clone()))
            .and_then(|reader| reader.finish())
            .map_err(|source| Error::Frame { key: artifact.key.clone(), path: artifact.path.clone(), source }),
        _ => read_parquet(&artifact.key, &artifact.path),
    }
}
