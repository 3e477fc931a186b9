//! A throwaway PostgreSQL server for tests: a fresh cluster in a temporary directory, on a free
//! loopback port, stopped (and deleted) when dropped. It uses Debian's `postgresql` package
//! (binaries under `/usr/lib/postgresql/<version>/bin`, or `PG_BIN`); as root, the cluster runs
//! as the `postgres` user the package creates, since `initdb` refuses to run as root. Without
//! those binaries a test is skipped with a loud message, unless `CI` is set: then it fails.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running throwaway cluster; trust authentication for the user `consist` on 127.0.0.1.
pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl PgServer {
    /// Start a cluster, or `None` (after saying why on stderr) when PostgreSQL is not installed
    /// and `CI` is not set.
    pub fn start() -> Option<PgServer> {
        let Some(bin) = binaries() else {
            let why = "PostgreSQL server binaries not found (install Debian's `postgresql` package, or set PG_BIN)";
            if std::env::var_os("CI").is_some() {
                panic!("{why}; CI is set, so this is a failure");
            }
            eprintln!("\n*** SKIPPED: {why} ***\n");
            return None;
        };
        let as_postgres = is_root();
        let dir = tempfile::tempdir().unwrap();
        if as_postgres {
            run(Command::new("chown").arg("postgres:postgres").arg(dir.path()));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let server = PgServer { dir, bin, port, as_postgres };
        let data = server.data();
        run(server
            .command("initdb")
            .args(["-U", "consist", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions", "-D"])
            .arg(&data));
        server.resume();
        Some(server)
    }

    /// Stop the server (an outage: connections are refused until [`PgServer::resume`]).
    pub fn stop(&self) {
        run(self.command("pg_ctl").arg("-D").arg(self.data()).args(["-m", "immediate", "-w", "stop"]));
    }

    /// Start the stopped server again, on the same port with the same data.
    pub fn resume(&self) {
        let options =
            format!("-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off", self.port, self.dir.path().display());
        run(self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(["-o", &options, "-w", "start"]));
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A command running one of the server's binaries, as the `postgres` user when we are root.
    fn command(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    /// Create database `name`; returns its URL.
    pub fn database(&self, name: &str) -> String {
        run(self.command("createdb").args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "consist", name]));
        self.url(name)
    }

    /// Run `sql` in database `name` as the superuser, as an administrator would with `psql`.
    pub fn psql(&self, name: &str, sql: &str) {
        run(self
            .command("psql")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "consist", "-v"])
            .args(["ON_ERROR_STOP=1", "-d", name, "-c", sql]));
    }

    /// A session of its own on database `name`, as the superuser (another host's, say).
    pub fn client(&self, name: &str) -> postgres::Client {
        postgres::Client::connect(&self.url(name), postgres::NoTls).expect("a session on the test server")
    }

    /// The URL of database `name` (created or not).
    pub fn url(&self, name: &str) -> String {
        format!("postgres://consist@127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self.command("pg_ctl").arg("-D").arg(self.data()).args(["-m", "immediate", "-w", "stop"]).output();
    }
}

fn run(command: &mut Command) {
    let out = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The newest installed server's binary directory (`PG_BIN` wins).
fn binaries() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| Path::new(bin).join("initdb").exists())
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// Remove this process's local state of the catalog at `url` (kept under the user's cache), as
/// a new host would start.
pub fn forget_local_state(url: &str) {
    let state = consist::CatalogLocation::parse(url).unwrap().state_path();
    let _ = std::fs::remove_dir_all(format!("{}.consist", state.display()));
}
