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

/// Files up to this size are uploaded in one request; larger ones in parts.
const ONE_REQUEST: u64 = 64 << 20;

/// An object store holding run outputs by content (see the module docs).
pub struct Remote {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    shown: String,
    read_only: bool,
    runtime: tokio::runtime::Runtime,
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
                    .build()
                    .map_err(|e| bad(e.to_string()))?,
            ),
            "gs" => Arc::new(
                object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_url(url.trim())
                    .build()
                    .map_err(|e| bad(e.to_string()))?,
            ),
            "az" | "abfs" | "abfss" | "azure" => Arc::new(
                object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_url(url.trim())
                    .build()
                    .map_err(|e| bad(e.to_string()))?,
            ),
            "http" | "https" => Arc::new(
                object_store::http::HttpBuilder::new()
                    .with_url(&parsed[..url::Position::BeforePath])
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
            "http" | "https" => ObjectPath::parse(parsed.path()).map_err(|e| bad(e.to_string()))?,
            _ => ObjectPath::parse(parsed.path()).map_err(|e| bad(e.to_string()))?,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("consist-remote")
            .enable_all()
            .build()
            .map_err(|e| bad(format!("cannot start its client ({e})")))?;
        Ok(Remote { store, prefix, shown, read_only, runtime })
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

    /// The object of content `hash`, once it is checked to be a plain hash.
    fn key(&self, hash: &str) -> Result<ObjectPath> {
        let hash = crate::ids::signature(hash, &self.shown)?;
        let parts = ["blake3", &hash[..2.min(hash.len())], hash];
        Ok(parts.iter().fold(self.prefix.clone(), |path, part| path.join(*part)))
    }

    /// Run `future` on this remote's runtime, from any thread (also one inside another runtime).
    fn block_on<T: Send>(&self, future: impl std::future::Future<Output = T> + Send) -> T {
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| s.spawn(|| self.runtime.block_on(future)).join().expect("remote transfer thread"))
        } else {
            self.runtime.block_on(future)
        }
    }

    fn err(&self, action: &'static str) -> impl Fn(object_store::Error) -> Error + '_ {
        move |e| Error::Remote { url: self.shown.clone(), action, reason: e.to_string() }
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

    async fn put(&self, key: &ObjectPath, file: &Path) -> Result<Uploaded> {
        if self.read_only {
            return Err(Error::Remote {
                url: self.shown.clone(),
                action: "uploading",
                reason: "this remote is read-only".into(),
            });
        }
        let size = std::fs::metadata(file).map_err(Error::io("uploading", file))?.len();
        if size > ONE_REQUEST {
            if self.exists(key).await? {
                return Ok(Uploaded::AlreadyThere);
            }
            return self.put_parts(key, file).await.map(|()| Uploaded::New);
        }
        let bytes = std::fs::read(file).map_err(Error::io("uploading", file))?;
        let create = PutOptions { mode: PutMode::Create, ..PutOptions::default() };
        match self.store.put_opts(key, PutPayload::from(bytes.clone()), create).await {
            Ok(_) => Ok(Uploaded::New),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(Uploaded::AlreadyThere),
            // A store without conditional writes: the same content written again is harmless.
            Err(object_store::Error::NotImplemented { .. } | object_store::Error::NotSupported { .. }) => {
                if self.exists(key).await? {
                    return Ok(Uploaded::AlreadyThere);
                }
                let put = self.store.put(key, PutPayload::from(bytes)).await;
                put.map(|_| Uploaded::New).map_err(self.err("uploading"))
            }
            Err(e) => Err(self.err("uploading")(e)),
        }
    }

    async fn put_parts(&self, key: &ObjectPath, file: &Path) -> Result<()> {
        use std::io::Read;
        let upload = self.store.put_multipart(key).await.map_err(self.err("uploading"))?;
        let mut writer = object_store::WriteMultipart::new(upload);
        let mut source = std::fs::File::open(file).map_err(Error::io("uploading", file))?;
        let mut chunk = vec![0u8; 8 << 20];
        loop {
            let n = source.read(&mut chunk).map_err(Error::io("uploading", file))?;
            if n == 0 {
                break;
            }
            writer.wait_for_capacity(4).await.map_err(self.err("uploading"))?;
            writer.write(&chunk[..n]);
        }
        writer.finish().await.map(drop).map_err(self.err("uploading"))
    }

    /// Download the object of content `hash` to `dest` (its directory created), checking that its
    /// bytes hash to `hash` before it takes `dest`'s place: a corrupt, partial or missing object
    /// is an error naming it, and leaves `dest` as it was.
    pub fn download(&self, hash: &str, dest: &Path) -> Result<()> {
        let key = self.key(hash)?;
        self.block_on(self.get(&key, hash, dest, true))
    }

    /// [`Remote::download`]; `durable` fsyncs the file before it takes `dest`'s place (a copy
    /// whose hash is remembered must not be torn by a crash; a bulk pull's copies are checked by
    /// hash when first read, and skip it).
    async fn get(&self, key: &ObjectPath, hash: &str, dest: &Path, durable: bool) -> Result<()> {
        use futures_util::StreamExt;
        use std::io::Write;
        let found = self.store.get(key).await.map_err(self.err("downloading"))?;
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).map_err(Error::io("creating directory", dir))?;
        }
        let tmp = crate::snapshot::tmp_path(dest);
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
                return Err(Error::Remote {
                    url: self.shown.clone(),
                    action: "downloading",
                    reason: format!(
                        "object {key} holds other bytes than its name says (blake3 {actual}): corrupt or partial; \
                         it is not used"
                    ),
                });
            }
            if durable {
                file.sync_all().map_err(Error::io("downloading to", &tmp))?;
            }
            std::fs::rename(&tmp, dest).map_err(Error::io("downloading to", dest))
        }
        .await;
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }

    /// Remove the object of content `hash` (already gone is fine).
    pub fn delete(&self, hash: &str) -> Result<()> {
        if self.read_only {
            return Err(Error::Remote {
                url: self.shown.clone(),
                action: "deleting",
                reason: "this remote is read-only".into(),
            });
        }
        let key = self.key(hash)?;
        self.block_on(async {
            match self.store.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(self.err("deleting an object")(e)),
            }
        })
    }

    /// Every object the remote holds, as (content hash, size in bytes).
    pub fn objects(&self) -> Result<Vec<(String, u64)>> {
        use futures_util::TryStreamExt;
        let root = self.prefix.clone().join("blake3");
        self.block_on(async {
            let listed: Vec<object_store::ObjectMeta> =
                self.store.list(Some(&root)).try_collect().await.map_err(self.err("listing objects"))?;
            Ok(listed
                .into_iter()
                .filter_map(|meta| {
                    let name = meta.location.filename()?.to_owned();
                    crate::ids::signature_problem(&name).is_none().then_some((name, meta.size))
                })
                .collect())
        })
    }
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
        assert_eq!(remote.objects().unwrap(), vec![(hash.clone(), 7)]);
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
}
