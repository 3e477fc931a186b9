//! A throwaway S3-compatible server for tests: `s3s-fs` (crates.io: `cargo install s3s-fs@0.14.1
//! --locked --features binary`; `.ci/run` installs it), on a free loopback port, storing objects
//! in a temporary directory, stopped when dropped. Processes reach it through the standard AWS
//! environment variables ([`S3Server::env`]), as users' do. Without the binary (on `PATH` or in
//! `S3S_FS`) a test is skipped with a loud message, unless `CI` is set: then it fails.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A running server with one access key.
pub struct S3Server {
    dir: tempfile::TempDir,
    child: Child,
    port: u16,
}

const KEY: &str = "consist-test";
const SECRET: &str = "consist-test-secret";

impl S3Server {
    /// Start a server, or `None` (after saying why) when `s3s-fs` is not installed and `CI` is
    /// not set.
    pub fn start() -> Option<S3Server> {
        let Some(binary) = binary() else {
            let why = "s3s-fs not found (cargo install s3s-fs@0.14.1 --locked --features binary, or set S3S_FS)";
            if std::env::var_os("CI").is_some() {
                panic!("{why}; CI is set, so this is a failure");
            }
            eprintln!("\n*** SKIPPED: {why} ***\n");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--access-key", KEY, "--secret-key", SECRET])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3s-fs starts");
        let server = S3Server { dir, child, port };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "s3s-fs did not listen on port {port}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Some(server)
    }

    /// Create bucket `name`; returns the remote URL `s3://<name>/consist`.
    pub fn bucket(&self, name: &str) -> String {
        std::fs::create_dir_all(self.dir.path().join(name)).unwrap();
        format!("s3://{name}/consist")
    }

    /// The environment a process needs to reach this server (what a user sets for a real one).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT", format!("http://127.0.0.1:{}", self.port)),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET.into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }

    /// Where the server keeps the objects of bucket `name` (to damage one, as a bad disk would).
    pub fn bucket_dir(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("S3S_FS") {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("PATH")?.to_str()?.split(':').map(|dir| PathBuf::from(dir).join("s3s-fs")).find(|p| p.is_file())
}
