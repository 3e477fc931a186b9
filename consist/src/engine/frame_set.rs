//! Output sets: many frames under one output key (one Parquet file per year, per region), stored
//! as a directory artifact with a manifest, loadable member by member or as one frame.

use std::collections::BTreeMap;
use std::path::Path;

use polars::prelude::{Column, DataFrame, PolarsResult};
use serde::{Deserialize, Serialize};

use crate::artifact::Artifact;
use crate::engine::context::StepContext;
use crate::engine::output::Output;
use crate::error::{Error, Result};

/// The manifest's file name inside a set's directory.
pub const MANIFEST: &str = "manifest.json";

/// The manifest's format name and version.
const FORMAT: &str = "consist-frame-set-v1";

/// Many frames under one output key, by member name (`2020`, `2025`, `north`): each is written
/// as `<key>/<name>.parquet` beside a `manifest.json`, and the directory is one artifact (its
/// identity is its tree: a changed member is a changed output). On a cache hit it comes back
/// whole; a consumer taking the directory (`&Path`) reads it with [`FrameSet::read`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FrameSet {
    frames: BTreeMap<String, DataFrame>,
}

/// One member as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Member {
    name: String,
    file: String,
    rows: usize,
    blake3: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: String,
    members: Vec<Member>,
}

impl FrameSet {
    /// An empty set.
    pub fn new() -> FrameSet {
        FrameSet::default()
    }

    /// Add (or replace) member `name`. Names become file names: letters, digits, `_`, `-`, `.`
    /// (checked when the set is recorded).
    pub fn insert(&mut self, name: impl Into<String>, frame: DataFrame) -> &mut FrameSet {
        self.frames.insert(name.into(), frame);
        self
    }

    /// Member `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<&DataFrame> {
        self.frames.get(name)
    }

    /// The members' names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.frames.keys().map(String::as_str)
    }

    /// How many members the set has.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether the set has no member.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The members as one frame, in name order, with a column `member_column` naming each row's
    /// member (the members must have the same columns).
    pub fn concat(&self, member_column: &str) -> PolarsResult<DataFrame> {
        let mut all: Option<DataFrame> = None;
        for (name, frame) in &self.frames {
            let mut part = frame.clone();
            part.with_column(Column::new(member_column.into(), vec![name.as_str(); frame.height()]))?;
            match &mut all {
                None => all = Some(part),
                Some(all) => drop(all.vstack_mut(&part)?),
            }
        }
        Ok(all.unwrap_or_default())
    }

    /// The members, by name.
    pub fn into_frames(self) -> BTreeMap<String, DataFrame> {
        self.frames
    }

    /// Read a set from its directory (a consumer's `&Path`), each member checked against the
    /// blake3 its manifest records.
    pub fn read(dir: &Path) -> Result<FrameSet> {
        let path = dir.join(MANIFEST);
        let bytes = std::fs::read(&path).map_err(Error::io("reading the frame set's manifest", &path))?;
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .ok()
            .filter(|m: &Manifest| m.format == FORMAT)
            .ok_or_else(|| bad(&path, format!("not a {FORMAT} manifest")))?;
        let mut set = FrameSet::new();
        for member in manifest.members {
            crate::names::check_key("frame set member", &member.name)?;
            let file = dir.join(&member.file);
            if file.parent() != Some(dir) {
                return Err(bad(&path, format!("member `{}` names a file outside the set", member.name)));
            }
            let actual =
                crate::files::hash::hash_file(&file).map_err(Error::io("hashing a frame set member", &file))?;
            if actual != member.blake3 {
                return Err(bad(
                    &file,
                    format!("its bytes changed since the manifest recorded them ({})", member.blake3),
                ));
            }
            set.insert(member.name.clone(), crate::files::frame::read_parquet(&member.name, &file)?);
        }
        Ok(set)
    }

    /// Write the members and the manifest into `dir` (which the caller made); returns the rows
    /// written and each member file with its blake3.
    fn write(&mut self, key: &str, dir: &Path) -> Result<(usize, Vec<(std::path::PathBuf, String)>)> {
        let mut members = Vec::with_capacity(self.frames.len());
        let mut rows = 0;
        for (name, frame) in &mut self.frames {
            crate::names::check_key("frame set member", name)?;
            let file = format!("{name}.parquet");
            let path = dir.join(&file);
            crate::files::frame::write_parquet(key, frame, &path)?;
            let blake3 = crate::files::hash::hash_file(&path).map_err(Error::io("hashing output", &path))?;
            rows += frame.height();
            members.push(Member { name: name.clone(), file, rows: frame.height(), blake3 });
        }
        let hashed = members.iter().map(|m| (dir.join(&m.file), m.blake3.clone())).collect();
        let manifest = Manifest { format: FORMAT.to_owned(), members };
        let bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Other(e.into()))?;
        let path = dir.join(MANIFEST);
        crate::files::atomic::write_atomic(&path, &bytes, true).map_err(Error::io("writing the manifest", &path))?;
        Ok((rows, hashed))
    }
}

/// A set that cannot be read as its manifest says, and why.
fn bad(path: &Path, reason: String) -> Error {
    Error::Io {
        action: "reading a frame set",
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, reason),
    }
}

impl Output for FrameSet {
    fn record(&mut self, key: &str, ctx: &mut StepContext<'_>) -> Result<Artifact> {
        let dir = ctx.output_dir()?.join(key);
        crate::names::check_key("output key", key)?;
        std::fs::create_dir_all(&dir).map_err(Error::io("creating the frame set's directory", &dir))?;
        let (rows, hashed) = self.write(key, &dir)?;
        // The directory's identity reads these hashes instead of hashing each member again.
        for (file, blake3) in &hashed {
            ctx.remember_hash(file, blake3);
        }
        let mut artifact = ctx.log_dir(key, &dir)?;
        artifact.meta.insert("frame_set".into(), serde_json::Value::from(self.len()));
        artifact.meta.insert("rows".into(), serde_json::Value::from(rows));
        ctx.replace_output(artifact.clone());
        Ok(artifact)
    }

    fn load(artifact: &Artifact) -> Result<Self> {
        if !artifact.path.is_dir() {
            return Err(Error::output_missing(artifact));
        }
        FrameSet::read(&artifact.path)
    }
}
