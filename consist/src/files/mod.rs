//! The files layer: how bytes reach disk and come back. Atomic writes (`atomic`), content hashes
//! of files (`hash`) and directories (`tree`), polars frames as Parquet (`frame`) and typed values through the value codec
//! (`codec`). Below the catalog and the engine; it knows no run or catalog.

pub(crate) mod atomic;
pub(crate) mod codec;
pub(crate) mod frame;
pub(crate) mod hash;
pub(crate) mod tree;
