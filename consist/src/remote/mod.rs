//! Artifacts in an object store, so that hosts sharing a catalog need no shared filesystem.
//!
//! A remote holds run outputs by content: the object `<prefix>/blake3/<2 hex>/<hash>` is the file
//! whose bytes hash to `<hash>`, whichever run wrote it. An executed step uploads its outputs
//! before its run reaches the catalog as a cache source; a host that finds a cache source whose
//! files it does not have downloads them, checks each hash, and serves the hit. A missing or
//! corrupt object is a miss with a warning, never wrong data: nothing is used until its bytes
//! hash to what the run recorded.
//!
//! Every backend is `object_store`'s (S3 and its compatibles, GCS, Azure, HTTP, `file://`),
//! configured from the standard places (`AWS_*`, `GOOGLE_*`, `AZURE_*` environment variables and
//! the SDKs' profiles as `object_store` reads them); credentials are never recorded or printed.
//! The object store's client is asynchronous: a remote drives it from a small runtime of its own.

mod ops;
mod transfer;
pub(crate) mod tree;

pub(crate) use ops::local_copy;
pub use ops::{KeepRuns, RemoteGcReport, RemoteStatus};
pub use transfer::{Transfer, TransferReport};

use std::path::Path;
use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::error::{Error, Result};

/// The environment variable naming the remote when the code or the command line does not.
pub const REMOTE_ENV: &str = "CONSIST_REMOTE";

/// Files up to this size are uploaded in one request; larger ones in parts (but over HTTP).
const ONE_REQUEST: u64 = 16 << 20;

/// The longest a store found unreachable is left alone.
const MAX_PAUSE: std::time::Duration = std::time::Duration::from_secs(60);

/// Whether `hash` names an object: a blake3 hash, 64 lower-case hex digits.
pub(crate) fn is_content_hash(hash: &str) -> bool {
    hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The error of an upload refused because `file`'s bytes (hashing to `actual`) are not the ones
/// its object's name says: the file changed since its hash was recorded.
fn changed(url: &str, file: &Path, actual: &str) -> Error {
    Error::Remote {
        url: url.to_owned(),
        action: "uploading",
        reason: format!(
            "{} changed since its hash was recorded (its bytes now hash to {actual}); it is not uploaded under \
             the old hash: run the step again to record the new content",
            file.display()
        ),
    }
}

/// An object store holding run outputs by content (see the module docs).
pub struct Remote {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    shown: String,
    read_only: bool,
    /// Whether this is a plain HTTP (WebDAV) server: a PUT there may show a partial object while
    /// it is written (so a mismatching object is not removed: it may be an upload in progress),
    /// and there are no multipart uploads (a large file goes in one request).
    http: bool,
    /// While the store cannot be reached: when to try again, and the pause after that.
    down: std::sync::Mutex<Option<(std::time::Instant, std::time::Duration)>>,
    /// Taken when dropped, to shut down without blocking (a tracker may be dropped inside async
    /// code).
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Remote {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Whether `e` is a request that never reached the store (refused, timed out, cut off).
fn unreachable(e: &object_store::Error) -> bool {
    use object_store::client::{HttpError, HttpErrorKind};
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(http) = cause.downcast_ref::<HttpError>() {
            return matches!(http.kind(), HttpErrorKind::Connect | HttpErrorKind::Timeout | HttpErrorKind::Request);
        }
        source = cause.source();
    }
    false
}

/// Retries of one request: few, and within a bound, so an unreachable store costs a step
/// seconds, not minutes (and is then left alone for a while: see [`Remote::available`]).
fn retry() -> object_store::RetryConfig {
    object_store::RetryConfig {
        max_retries: 3,
        retry_timeout: std::time::Duration::from_secs(30),
        ..object_store::RetryConfig::default()
    }
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote").field("url", &self.shown).field("read_only", &self.read_only).finish_non_exhaustive()
    }
}

/// What an upload found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uploaded {
    /// The object was written.
    New,
    /// An object with this content was already there (written by this or another host).
    AlreadyThere,
}

impl Remote {
    /// The remote at `url`: `s3://bucket/prefix` (and `s3a://`), `gs://bucket/prefix`,
    /// `az://container/prefix` (and `abfs://`, `abfss://`), `http(s)://host/prefix`, or
    /// `file:///absolute/dir`. A read-only remote never writes (developers reading what CI wrote).
    /// Connects lazily: an unreachable store is reported by the first transfer.
    pub fn open(url: &str, read_only: bool) -> Result<Remote> {
        let shown = crate::location::redact(url.trim());
        let bad = |reason: String| Error::RemoteLocation { url: shown.clone(), reason };
        let parsed = url::Url::parse(url.trim()).map_err(|e| bad(format!("it is not a URL ({e})")))?;
        let store: Arc<dyn ObjectStore> = match parsed.scheme() {
            "s3" | "s3a" => Arc::new(
                object_store::aws::AmazonS3Builder::from_env()
                    .with_url(url.trim())
                    .with_conditional_put(object_store::aws::S3ConditionalPut::ETagMatch)
                    .with_retry(retry())
                    .build()
                    .map_err(|e| bad(e.to_string()))?,
            ),
            "gs" => Arc::new(
                object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_url(url.trim())
                    .with_retry(retry())
                    .build()
                    .map_err(|e| bad(e.to_string()))?,
            ),
            "az" | "abfs" | "abfss" | "azure" => Arc::new(
                object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_url(url.trim())
                    .with_retry(retry())
                    .build()
                    .map_err(|e| bad(e.to_string()))?,
            ),
            "http" | "https" => Arc::new(
                object_store::http::HttpBuilder::new()
                    .with_url(&parsed[..url::Position::BeforePath])
                    // Written out by the user: plain HTTP is what they asked for.
                    .with_client_options(object_store::ClientOptions::new().with_allow_http(true))
                    .with_retry(retry())
                    .build()
                    .map_err(|e| bad(e.to_string()))?,
            ),
            "file" => {
                let dir =
                    parsed.to_file_path().map_err(|()| bad("a file:// URL names an absolute directory".into()))?;
                std::fs::create_dir_all(&dir).map_err(Error::io("creating the remote directory", &dir))?;
                Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&dir).map_err(|e| bad(e.to_string()))?)
            }
            other => {
                return Err(bad(format!(
                    "`{other}://` is not a remote scheme; use s3://, gs://, az://, http(s):// or file://"
                )));
            }
        };
        // Within a bucket or container, the URL's path is the prefix; a file:// store is rooted
        // at the directory itself.
        let prefix = match parsed.scheme() {
            "file" => ObjectPath::default(),
            _ => ObjectPath::parse(parsed.path()).map_err(|e| bad(e.to_string()))?,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("consist-remote")
            .enable_all()
            .build()
            .map_err(|e| bad(format!("cannot start its client ({e})")))?;
        let http = matches!(parsed.scheme(), "http" | "https");
        Ok(Remote { store, prefix, shown, read_only, http, down: Default::default(), runtime: Some(runtime) })
    }

    /// The remote named by `CONSIST_REMOTE`, if it is set and not empty.
    pub fn from_env(read_only: bool) -> Result<Option<Remote>> {
        match std::env::var(REMOTE_ENV) {
            Ok(url) if !url.trim().is_empty() => Remote::open(&url, read_only).map(Some),
            _ => Ok(None),
        }
    }

    /// The remote's URL (without a password, if the URL had one).
    pub fn url(&self) -> &str {
        &self.shown
    }

    /// Whether this remote is only read (never written).
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The object of content `hash`, once it is checked to be a blake3 hash (64 lower-case hex
    /// digits: an object's name, on any store, case-sensitive or not).
    fn key(&self, hash: &str) -> Result<ObjectPath> {
        if !is_content_hash(hash) {
            return Err(Error::Remote {
                url: self.shown.clone(),
                action: "naming an object",
                reason: format!("`{}` is not a blake3 content hash", hash.escape_debug()),
            });
        }
        let parts = ["blake3", &hash[..2], hash];
        Ok(parts.iter().fold(self.prefix.clone(), |path, part| path.join(*part)))
    }

    /// Run `future` on this remote's runtime, from any thread (also one inside another runtime).
    fn block_on<T: Send>(&self, future: impl std::future::Future<Output = T> + Send) -> T {
        let runtime = self.runtime.as_ref().expect("a remote's runtime lives until it is dropped");
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| s.spawn(|| runtime.block_on(future)).join().expect("remote transfer thread"))
        } else {
            runtime.block_on(future)
        }
    }

    /// The error of a failed request; one that did not reach the store (refused, timed out)
    /// leaves it alone for a while, growing, so that steps do not wait on it one after another.
    fn err(&self, action: &'static str) -> impl Fn(object_store::Error) -> Error + '_ {
        move |e| {
            if unreachable(&e) {
                let mut down = self.down.lock().unwrap_or_else(|e| e.into_inner());
                let pause = down.map_or(std::time::Duration::from_secs(5), |(_, p)| (p * 2).min(MAX_PAUSE));
                *down = Some((std::time::Instant::now() + pause, pause));
            }
            Error::Remote { url: self.shown.clone(), action, reason: e.to_string() }
        }
    }

    /// Whether the store may be tried now (not found unreachable within its current pause).
    pub fn available(&self) -> bool {
        let mut down = self.down.lock().unwrap_or_else(|e| e.into_inner());
        match *down {
            Some((until, _)) if std::time::Instant::now() < until => false,
            Some(_) => {
                *down = None;
                true
            }
            None => true,
        }
    }

    /// Whether the object of content `hash` is there.
    pub fn has(&self, hash: &str) -> Result<bool> {
        let key = self.key(hash)?;
        self.block_on(async { self.exists(&key).await })
    }

    async fn exists(&self, key: &ObjectPath) -> Result<bool> {
        match self.store.head(key).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.err("looking for an object")(e)),
        }
    }

    /// Upload `file` as the object of content `hash` (the caller knows the file's hash). An
    /// object already there is left as it is: content-addressed, it holds the same bytes.
    pub fn upload(&self, hash: &str, file: &Path) -> Result<Uploaded> {
        let key = self.key(hash)?;
        self.block_on(self.put(&key, file))
    }

    /// An error for `action` on a read-only remote.
    fn writable(&self, action: &'static str) -> Result<()> {
        if self.read_only {
            return Err(Error::Remote { url: self.shown.clone(), action, reason: "this remote is read-only".into() });
        }
        Ok(())
    }

    async fn put(&self, key: &ObjectPath, file: &Path) -> Result<Uploaded> {
        self.writable("uploading")?;
        let size = std::fs::metadata(file).map_err(Error::io("uploading", file))?.len();
        if size > ONE_REQUEST && !self.http {
            if self.exists(key).await? {
                return Ok(Uploaded::AlreadyThere);
            }
            return self.put_parts(key, file).await.map(|()| Uploaded::New);
        }
        let bytes = std::fs::read(file).map_err(Error::io("uploading", file))?;
        let actual = blake3::hash(&bytes).to_hex();
        if key.filename() != Some(actual.as_str()) {
            return Err(changed(&self.shown, file, &actual));
        }
        // A payload is shared, not copied, when it is cloned.
        let payload = PutPayload::from(bytes);
        let create = PutOptions { mode: PutMode::Create, ..PutOptions::default() };
        match self.store.put_opts(key, payload.clone(), create).await {
            Ok(_) => Ok(Uploaded::New),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(Uploaded::AlreadyThere),
            // A store without conditional writes: the same content written again is harmless.
            Err(object_store::Error::NotImplemented { .. } | object_store::Error::NotSupported { .. }) => {
                if self.exists(key).await? {
                    return Ok(Uploaded::AlreadyThere);
                }
                let put = self.store.put(key, payload).await;
                put.map(|_| Uploaded::New).map_err(self.err("uploading"))
            }
            Err(e) => Err(self.err("uploading")(e)),
        }
    }

    /// Upload a large file in parts, hashing what is sent: bytes other than the object's name
    /// says (the file changed since it was recorded) abort the upload, which never completes.
    async fn put_parts(&self, key: &ObjectPath, file: &Path) -> Result<()> {
        use std::io::Read;
        let mut source = std::fs::File::open(file).map_err(Error::io("uploading", file))?;
        let upload = self.store.put_multipart(key).await.map_err(self.err("uploading"))?;
        let mut writer = object_store::WriteMultipart::new(upload);
        let mut hasher = blake3::Hasher::new();
        let mut chunk = vec![0u8; 8 << 20];
        let sent: Result<()> = async {
            loop {
                let n = source.read(&mut chunk).map_err(Error::io("uploading", file))?;
                if n == 0 {
                    return Ok(());
                }
                hasher.update(&chunk[..n]);
                writer.wait_for_capacity(4).await.map_err(self.err("uploading"))?;
                writer.write(&chunk[..n]);
            }
        }
        .await;
        let actual = hasher.finalize().to_hex();
        let sent = sent.and_then(|()| match key.filename() == Some(actual.as_str()) {
            true => Ok(()),
            false => Err(changed(&self.shown, file, &actual)),
        });
        match sent {
            Ok(()) => writer.finish().await.map(drop).map_err(self.err("uploading")),
            Err(e) => {
                let _ = writer.abort().await;
                Err(e)
            }
        }
    }

    /// Download the object of content `hash` to `dest` (its directory created), checking that its
    /// bytes hash to `hash` before it takes `dest`'s name: a corrupt, partial or missing object
    /// is an error naming it ([`Error::RemoteObjectCorrupt`] for other bytes). A file already at
    /// `dest` is never replaced: one with other bytes is an error, left as it is.
    pub fn download(&self, hash: &str, dest: &Path) -> Result<()> {
        let key = self.key(hash)?;
        self.block_on(self.get(&key, hash, dest))
    }

    /// [`Remote::download`]: the copy is fsynced before it takes its name (its hash may be
    /// remembered by size and times, which a crash could leave unchanged over torn bytes).
    async fn get(&self, key: &ObjectPath, hash: &str, dest: &Path) -> Result<()> {
        use futures_util::StreamExt;
        use std::io::Write;
        let found = self.store.get(key).await.map_err(self.err("downloading"))?;
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).map_err(Error::io("creating directory", dir))?;
        }
        let tmp = crate::files::atomic::tmp_path(dest);
        let written = async {
            let mut file = std::fs::File::create(&tmp).map_err(Error::io("downloading to", &tmp))?;
            let mut hasher = blake3::Hasher::new();
            let mut stream = found.into_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(self.err("downloading"))?;
                hasher.update(&chunk);
                file.write_all(&chunk).map_err(Error::io("downloading to", &tmp))?;
            }
            let actual = hasher.finalize().to_hex().to_string();
            if actual != hash {
                return Err(Error::RemoteObjectCorrupt { url: self.shown.clone(), key: key.to_string(), actual });
            }
            file.sync_all().map_err(Error::io("downloading to", &tmp))?;
            // Never in place of a file already there (a link fails when the name is taken).
            match std::fs::hard_link(&tmp, dest) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    match crate::files::hash::hash_file(dest).is_ok_and(|h| h == hash) {
                        true => Ok(()),
                        false => Err(Error::io("downloading to", dest)(std::io::Error::new(
                            std::io::ErrorKind::AlreadyExists,
                            "another file is there; it is left as it is",
                        ))),
                    }
                }
                Err(e) => Err(Error::io("downloading to", dest)(e)),
            }
        }
        .await;
        let _ = std::fs::remove_file(&tmp);
        written
    }

    /// Remove an object found corrupt (its bytes do not hash to its name), so that the next
    /// upload of that content replaces it; not on a store whose writes are not atomic (what was
    /// read may have been an upload in progress) nor on a read-only remote.
    pub(crate) fn forget_corrupt(&self, hash: &str) {
        if !self.http && !self.read_only {
            let _ = self.delete(hash);
        }
    }

    /// Remove the object of content `hash` (already gone is fine).
    pub fn delete(&self, hash: &str) -> Result<()> {
        self.writable("deleting")?;
        let key = self.key(hash)?;
        self.block_on(async {
            match self.store.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(self.err("deleting an object")(e)),
            }
        })
    }

    /// Every object the remote holds (what is not named by a content hash is left out).
    pub fn objects(&self) -> Result<Vec<RemoteObject>> {
        use futures_util::TryStreamExt;
        let root = self.prefix.clone().join("blake3");
        self.block_on(async {
            let listed: Vec<object_store::ObjectMeta> =
                self.store.list(Some(&root)).try_collect().await.map_err(self.err("listing objects"))?;
            Ok(listed
                .into_iter()
                .filter_map(|meta| {
                    let hash = meta.location.filename().filter(|name| is_content_hash(name))?.to_owned();
                    Some(RemoteObject { hash, size: meta.size, modified: meta.last_modified })
                })
                .collect())
        })
    }
}

/// An object in a remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteObject {
    /// The blake3 hash of its bytes: its name.
    pub hash: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written, as the store says.
    pub modified: chrono::DateTime<chrono::Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_named_by_their_content_under_the_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().display());
        let remote = Remote::open(&url, false).unwrap();
        let hash = blake3::hash(b"x").to_hex().to_string();
        assert_eq!(remote.key(&hash).unwrap().to_string(), format!("blake3/{}/{hash}", &hash[..2]));
        assert!(remote.key("../../etc").is_err(), "a hash is a plain hash");
        let s3 = Remote::open("s3://bucket/team/consist", true).unwrap();
        assert_eq!(s3.key(&hash).unwrap().to_string(), format!("team/consist/blake3/{}/{hash}", &hash[..2]));
        assert!(s3.is_read_only());
        let secret = Remote::open("https://alice:s3cret@store.lab/consist", true).unwrap();
        assert!(secret.url().contains("alice:***@") && !format!("{secret:?}").contains("s3cret"));
    }

    #[test]
    fn an_upload_round_trips_and_a_corrupt_object_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let remote = Remote::open(&format!("file://{}", dir.path().join("bucket").display()), false).unwrap();
        let file = dir.path().join("out.bin");
        std::fs::write(&file, b"payload").unwrap();
        let hash = blake3::hash(b"payload").to_hex().to_string();
        assert_eq!(remote.upload(&hash, &file).unwrap(), Uploaded::New);
        assert_eq!(remote.upload(&hash, &file).unwrap(), Uploaded::AlreadyThere);
        assert!(remote.has(&hash).unwrap());
        let back = dir.path().join("back/out.bin");
        remote.download(&hash, &back).unwrap();
        assert_eq!(std::fs::read(&back).unwrap(), b"payload");
        let objects = remote.objects().unwrap();
        assert_eq!(objects.iter().map(|o| (o.hash.as_str(), o.size)).collect::<Vec<_>>(), vec![(hash.as_str(), 7)]);
        // Corrupt it in the store: the download is refused and leaves the destination alone.
        let stored = dir.path().join("bucket/blake3").join(&hash[..2]).join(&hash);
        for damaged in [&b"payloaX"[..], &b"pay"[..]] {
            std::fs::write(&stored, damaged).unwrap();
            let err = remote.download(&hash, &back).unwrap_err().to_string();
            assert!(err.contains("corrupt or partial"), "{err}");
            assert_eq!(std::fs::read(&back).unwrap(), b"payload", "the destination is left as it was");
        }
        std::fs::remove_file(&stored).unwrap();
        assert!(remote.download(&hash, &back).is_err(), "a lost object is an error");
        assert!(!remote.has(&hash).unwrap());
        let read_only = Remote::open(&format!("file://{}", dir.path().join("bucket").display()), true).unwrap();
        assert!(read_only.upload(&hash, &file).unwrap_err().to_string().contains("read-only"));
        for bad in ["ftp://x/y", "not a url", "file://relative"] {
            assert!(Remote::open(bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_file_changed_since_it_was_recorded_is_never_uploaded_under_its_old_hash() {
        let dir = tempfile::tempdir().unwrap();
        let remote = Remote::open(&format!("file://{}", dir.path().join("bucket").display()), false).unwrap();
        // One request, and (past 16 MiB) in parts: the parts already sent never become an object.
        for size in [7, (ONE_REQUEST + 1) as usize] {
            let file = dir.path().join("out.bin");
            std::fs::write(&file, vec![1u8; size]).unwrap();
            let recorded = blake3::hash(&vec![2u8; size]).to_hex().to_string();
            let err = remote.upload(&recorded, &file).unwrap_err().to_string();
            assert!(err.contains("changed since its hash was recorded"), "{size}: {err}");
            assert!(!remote.has(&recorded).unwrap() && remote.objects().unwrap().is_empty(), "{size}");
        }
    }

    #[test]
    fn a_download_never_replaces_a_file_already_there() {
        let dir = tempfile::tempdir().unwrap();
        let remote = Remote::open(&format!("file://{}", dir.path().join("bucket").display()), false).unwrap();
        let file = dir.path().join("out.bin");
        std::fs::write(&file, b"payload").unwrap();
        let hash = blake3::hash(b"payload").to_hex().to_string();
        remote.upload(&hash, &file).unwrap();
        let taken = dir.path().join("taken.bin");
        std::fs::write(&taken, b"someone else's").unwrap();
        let err = remote.download(&hash, &taken).unwrap_err().to_string();
        assert!(err.contains("another file is there"), "{err}");
        assert_eq!(std::fs::read(&taken).unwrap(), b"someone else's");
        remote.download(&hash, &file).unwrap();
        let leftovers = std::fs::read_dir(dir.path()).unwrap().filter(|e| e.is_ok()).count();
        assert_eq!(leftovers, 3, "the same bytes already there are fine, and no temporary file is left");
    }

    #[test]
    fn an_unreachable_store_is_left_alone_for_a_while() {
        let remote = Remote::open("http://127.0.0.1:9/consist", false).unwrap();
        assert!(remote.available());
        let hash = blake3::hash(b"x").to_hex().to_string();
        let err = remote.has(&hash).unwrap_err().to_string();
        assert!(!remote.available(), "after: {err}");
    }
}
