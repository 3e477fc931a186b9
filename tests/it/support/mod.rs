//! What the tests share: a temporary workspace with a tracker, execution counters and the CLI
//! (`workspace.rs`), and throwaway servers: PostgreSQL (`pg.rs`) and an S3-compatible store
//! (`s3.rs`).

pub mod pg;
pub mod s3;
mod workspace;

pub use workspace::*;
