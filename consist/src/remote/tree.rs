//! Directory artifacts on a remote: a tree is its listing (stored under the tree's identity, which
//! is the listing's blake3) plus each file under its own hash, so a tree is content-addressed like
//! any file and shares the objects of files it has in common with others.

use std::path::{Path, PathBuf};

use super::{Remote, Transfer};
use crate::artifact::Artifact;
use crate::error::{Error, Result};

/// What puts `artifact` on a remote: a file as itself (nothing, without a recorded hash); a
/// directory as its listing (written into `scratch`, named by its hash) and each of its files.
/// An error names why a directory cannot go (it is gone, or changed since it was recorded: its
/// files then belong to no recorded identity).
pub(crate) fn transfers(artifact: &Artifact, scratch: &Path) -> std::result::Result<Vec<Transfer>, String> {
    if artifact.driver != crate::Driver::Directory {
        return Ok(artifact
            .hash
            .iter()
            .map(|hash| Transfer { hash: hash.clone(), path: artifact.path.clone() })
            .collect());
    }
    let hash = artifact.hash.as_deref().ok_or("it has no recorded hash")?;
    let (files, bytes) = local_listing(&artifact.path, hash)?;
    let items: Vec<Transfer> =
        files.into_iter().map(|(name, h)| Transfer { hash: h, path: artifact.path.join(name) }).collect();
    std::fs::create_dir_all(scratch).map_err(|e| e.to_string())?;
    let listing = scratch.join(format!("{hash}.tree.json"));
    crate::files::atomic::write_atomic(&listing, &bytes, false).map_err(|e| e.to_string())?;
    Ok(std::iter::once(Transfer { hash: hash.to_owned(), path: listing }).chain(items).collect())
}

/// A tree's files (relative path, blake3) and its listing's bytes.
pub(crate) type Listed = (Vec<(String, String)>, Vec<u8>);

/// The listing of the directory at `dir` and its bytes, when it still is the recorded tree `hash`
/// (every file hashed again); else why not.
pub(crate) fn local_listing(dir: &Path, hash: &str) -> std::result::Result<Listed, String> {
    let files = crate::files::tree::listing(dir, crate::files::hash::hash_file).map_err(|e| e.to_string())?;
    let bytes = crate::files::tree::listing_bytes(files.clone());
    if blake3::hash(&bytes).to_hex().as_str() != hash {
        return Err("the directory changed since it was recorded".into());
    }
    Ok((files, bytes))
}

/// The listing of tree `hash`, read from the remote (into a temporary file, removed after). A
/// listing that is missing or names paths outside its tree is an error naming the object.
pub(crate) fn read_listing(remote: &Remote, hash: &str) -> Result<Vec<(String, String)>> {
    let path = crate::files::atomic::tmp_path(&std::env::temp_dir().join(format!("consist-{hash}.tree.json")));
    let read = remote
        .download(hash, &path)
        .and_then(|()| std::fs::read(&path).map_err(Error::io("reading a tree listing", &path)));
    let _ = std::fs::remove_file(&path);
    crate::files::tree::parse_listing(&read?).ok_or_else(|| Error::Remote {
        url: remote.url().to_owned(),
        action: "reading a directory listing",
        reason: format!("object {hash} is not a listing whose paths stay inside its tree"),
    })
}

/// Download the tree `hash` into `dest`: its listing, then each file, built beside `dest` and
/// checked whole before it takes `dest`'s place (a damaged copy there is replaced).
pub(crate) fn download(remote: &Remote, hash: &str, dest: &Path) -> Result<()> {
    // Built under a name of this process's own (another process may fetch the same tree).
    let building = crate::files::atomic::tmp_path(dest);
    let result = (|| {
        let files = read_listing(remote, hash)?;
        std::fs::create_dir_all(&building).map_err(Error::io("creating directory", &building))?;
        for (file, file_hash) in &files {
            let path: PathBuf = building.join(file);
            // A corrupt file's object is removed here, by its own hash, so that the next upload
            // of that content replaces it; the error is the tree's, not a corrupt listing's (the
            // caller would remove the listing, which is whole).
            remote.download(file_hash, &path).map_err(|e| {
                if matches!(e, Error::RemoteObjectCorrupt { .. }) {
                    remote.forget_corrupt(file_hash);
                }
                Error::Remote {
                    url: remote.url().to_owned(),
                    action: "downloading a directory",
                    reason: format!("its file `{file}`: {e}"),
                }
            })?;
        }
        let actual =
            crate::files::hash::hash_file(&building).map_err(Error::io("hashing a downloaded tree", &building))?;
        if actual != hash {
            return Err(Error::Remote {
                url: remote.url().to_owned(),
                action: "downloading a directory",
                reason: format!("the tree downloaded for {hash} is {actual}"),
            });
        }
        // Another process may have placed the same tree meanwhile: a good copy is kept.
        if dest.exists() && crate::files::hash::hash_file(dest).is_ok_and(|h| h == hash) {
            return Ok(());
        }
        if dest.exists() {
            std::fs::remove_dir_all(dest).map_err(Error::io("replacing a damaged copy", dest))?;
        }
        std::fs::rename(&building, dest).map_err(Error::io("placing a downloaded tree", dest))
    })();
    let _ = std::fs::remove_dir_all(&building);
    result
}
