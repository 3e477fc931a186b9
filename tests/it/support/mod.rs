//! What the tests share: a temporary workspace with a tracker, execution counters and the CLI
//! (`workspace.rs`), and throwaway servers: PostgreSQL (`pg.rs`) and an S3-compatible store
//! (`s3.rs`).

pub mod pg;
pub mod s3;
mod workspace;

pub use workspace::*;

/// `db gc` options that free every entry not otherwise kept: no `--max-age` or `--min-age` left.
pub fn gc_at_once() -> consist::admin::GcOptions {
    let zero = Some(std::time::Duration::ZERO);
    consist::admin::GcOptions { max_age: zero, min_age: zero, ..Default::default() }
}
