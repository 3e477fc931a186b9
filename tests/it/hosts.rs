//! Many hosts, one PostgreSQL catalog: each "host" is a test-worker process with its own host
//! name (`CONSIST_HOST`), its own local state (`XDG_CACHE_HOME`) and its own run dir, against one
//! real throwaway server. Scripted interleavings: twins racing, a purge while a tracker is open, a
//! rebuild by one host, an outage mid-sweep, an unusable source, a catalog recreated at the same
//! URL, a killed host.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use consist::{CacheMode, RunQuery, Tracker};

use crate::support::pg::{PgServer, forget_local_state};
use crate::support::{Workspace, square};

/// One host of a shared catalog.
pub struct Host {
    pub name: String,
    pub state: tempfile::TempDir,
    pub run_dir: PathBuf,
    /// More environment for its processes (a remote's URL and credentials).
    pub env: Vec<(String, String)>,
}

impl Host {
    pub fn new(name: &str, root: &Path) -> Host {
        Host { name: name.to_owned(), state: tempfile::tempdir().unwrap(), run_dir: root.join(name), env: Vec::new() }
    }

    /// The test worker as this host.
    pub fn worker(&self) -> Command {
        let mut command = Command::new(crate::process::worker());
        command.env("CONSIST_HOST", &self.name).env("XDG_CACHE_HOME", self.state.path());
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// `square(value)`, its body sleeping `sleep_ms`.
    fn step(&self, url: &str, value: i64, sleep_ms: u64) -> Command {
        let mut command = self.worker();
        command.arg("step").arg(&self.run_dir).arg(url).arg(value.to_string()).arg(sleep_ms.to_string());
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        command
    }

    /// `square` of each value, in one tracker.
    fn steps(&self, url: &str, values: &[i64]) -> Command {
        let mut command = self.worker();
        command.arg("steps").arg(&self.run_dir).arg(url).args(values.iter().map(i64::to_string));
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        command
    }

    /// The consist CLI as this host.
    pub fn cli(&self, url: &str, args: &[&str]) -> Output {
        self.worker().arg("cli").args(args).arg("--db-path").arg(url).output().unwrap()
    }
}

/// (kind, run id, square) of each step a worker reported.
pub fn results(out: &Output) -> Vec<(String, String, i64)> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("executed ") || l.starts_with("hit "))
        .map(|l| {
            let parts: Vec<&str> = l.split(' ').collect();
            (parts[0].to_owned(), parts[1].to_owned(), parts[2].parse().unwrap())
        })
        .collect()
}

fn one(out: Output) -> (String, String) {
    assert!(out.status.success(), "worker failed: {}", String::from_utf8_lossy(&out.stderr));
    let (kind, id, _) = results(&out).pop().expect("a result line");
    (kind, id)
}

pub fn said(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// An in-process tracker on `url` with this process's own local state (a host of its own).
fn tracker(run_dir: &Path, url: &str, mode: CacheMode) -> Tracker {
    Tracker::builder(run_dir).catalog(url).cache_mode(mode).open().unwrap()
}

#[test]
fn twins_on_two_hosts_execute_once_the_other_waits_and_hits() {
    let Some(server) = PgServer::start() else { return };
    let url = server.database("twins");
    let ws = Workspace::new();
    let (a, b) = (Host::new("node-a", ws.path()), Host::new("node-b", ws.path()));
    let first = a.step(&url, 7, 1500).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let second = b.step(&url, 7, 1500).spawn().unwrap();
    let (first, second) = (one(first.wait_with_output().unwrap()), one(second.wait_with_output().unwrap()));
    assert_eq!(first.0, "executed");
    assert_eq!(second.0, "hit", "the twin on the other host waited for the lease and hit");
    let hit = tracker(&ws.run_dir(), &url, CacheMode::Reuse).catalog().resolve_run(&second.1).unwrap();
    assert_eq!(hit.cache_source(), Some(first.1.as_str()));
    forget_local_state(&url);
}

#[test]
fn every_host_names_the_earliest_completed_twin_as_the_source() {
    let Some(server) = PgServer::start() else { return };
    let url = server.database("earliest");
    let ws = Workspace::new();
    // Twins that both executed (overwrite mode takes no claim): the one started first ends last.
    let (slow, fast) = std::thread::scope(|s| {
        let slow = s.spawn(|| {
            square(&tracker(&ws.path().join("slow"), &url, CacheMode::Overwrite), 8, || {
                std::thread::sleep(Duration::from_millis(900))
            })
            .run
        });
        std::thread::sleep(Duration::from_millis(200));
        let fast = s.spawn(|| {
            square(&tracker(&ws.path().join("fast"), &url, CacheMode::Overwrite), 8, || {
                std::thread::sleep(Duration::from_millis(50))
            })
            .run
        });
        (slow.join().unwrap(), fast.join().unwrap())
    });
    assert!(slow.created_at < fast.created_at && fast.ended_at < slow.ended_at);
    // This host's own index last saw the slow twin; a fresh host has nothing: both name the twin
    // that completed first.
    let here = square(&tracker(&ws.run_dir(), &url, CacheMode::Reuse), 8, || {});
    assert_eq!(here.run.cache_source(), Some(fast.id.as_str()));
    let elsewhere = one(Host::new("node-c", ws.path()).step(&url, 8, 0).output().unwrap());
    assert_eq!(elsewhere.0, "hit");
    let run = tracker(&ws.run_dir(), &url, CacheMode::Reuse).catalog().resolve_run(&elsewhere.1).unwrap();
    assert_eq!(run.cache_source(), Some(fast.id.as_str()));
    forget_local_state(&url);
}

#[test]
fn a_source_whose_files_are_gone_is_skipped_and_the_cache_heals() {
    let Some(server) = PgServer::start() else { return };
    let url = server.database("heal");
    let ws = Workspace::new();
    let (a, b) = (Host::new("node-a", ws.path()), Host::new("node-b", ws.path()));
    assert_eq!(one(a.step(&url, 5, 0).output().unwrap()).0, "executed");
    std::fs::remove_dir_all(a.run_dir.join("outputs")).unwrap();
    let kinds: Vec<String> = (0..3).map(|_| one(b.step(&url, 5, 0).output().unwrap()).0).collect();
    assert_eq!(kinds, ["executed", "hit", "hit"], "the unusable source is skipped for the next");
    forget_local_state(&url);
}

#[test]
fn steps_run_through_an_outage_and_every_run_reaches_the_catalog_once() {
    let Some(server) = PgServer::start() else { return };
    let url = server.database("outage");
    let ws = Workspace::new();
    let host = Host::new("node-a", ws.path());
    let (_, before) = one(host.step(&url, 100, 0).output().unwrap());
    let values: Vec<i64> = (0..30).collect();
    let mut sweep = host.steps(&url, &values);
    sweep.env("CONSIST_TEST_SLEEP_MS", "100");
    let child = sweep.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(800));
    server.stop();
    // A process that starts while the server is down works too, without waiting for it.
    let started = Instant::now();
    let mut during = host.step(&url, 101, 0).spawn().unwrap();
    while during.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = during.kill();
    let during = one(during.wait_with_output().unwrap());
    assert_eq!(during.0, "executed", "a step ran with the server down");
    server.resume();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the sweep carried on: {}", said(&out));
    let mut results = results(&out);
    assert_eq!(results.len(), 30);
    assert!(results.iter().all(|(kind, _, _)| kind == "executed"));
    // The process that ran during the outage left its run in the host's queue, which the host's
    // next tracker writes (the sweep's writer, once the server was back, already may have).
    let (kind, after) = one(host.step(&url, 101, 0).output().unwrap());
    assert_eq!(kind, "hit");
    results.extend([during.1, before, after].map(|id| (String::new(), id, 0)));
    let runs = tracker(&ws.run_dir(), &url, CacheMode::Reuse)
        .catalog()
        .store()
        .find_runs(&RunQuery::default().model("square"))
        .unwrap();
    let ids: std::collections::BTreeSet<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!((runs.len(), ids.len()), (33, 33), "every run in the catalog, once");
    assert!(results.iter().all(|(_, id, _)| ids.contains(id.as_str())));
    forget_local_state(&url);
}

#[test]
fn a_catalog_recreated_at_the_same_url_serves_none_of_the_old_hits() {
    let Some(server) = PgServer::start() else { return };
    let url = server.database("recreated");
    let ws = Workspace::new();
    let host = Host::new("node-a", ws.path());
    let (_, old) = one(host.step(&url, 3, 0).output().unwrap());
    server.psql("postgres", "DROP DATABASE recreated");
    server.psql("postgres", "CREATE DATABASE recreated");
    let (kind, new) = one(host.step(&url, 3, 0).output().unwrap());
    assert_eq!(kind, "executed", "no hit on {old}, which the new catalog has never held");
    let out = host.cli(&url, &["runs", "--json"]);
    assert!(said(&out).contains(&new) && !said(&out).contains(&old), "{}", said(&out));
}

#[test]
fn a_purge_on_one_host_is_honoured_by_a_tracker_open_on_another() {
    let Some(server) = PgServer::start() else { return };
    let url = server.database("purged");
    let ws = Workspace::new();
    let admin = Host::new("node-a", ws.path());
    let (_, first) = one(admin.step(&url, 4, 0).output().unwrap());
    // This process is another host, its tracker open throughout.
    let open = tracker(&ws.run_dir(), &url, CacheMode::Reuse);
    let hit = square(&open, 4, || {});
    assert_eq!(hit.run.cache_source(), Some(first.as_str()));
    let out = admin.cli(&url, &["db", "purge", &first, "--yes"]);
    assert!(out.status.success(), "{}", said(&out));
    let purged_at = Instant::now();
    std::thread::sleep(consist::store::EPOCH_POLL + Duration::from_millis(100));
    let after = square(&open, 4, || {});
    assert!(!after.cache_hit(), "served {:?} {:?} after the purge", after.run.cache_source(), purged_at.elapsed());
    // A tracker opened after the purge, on the purging host too, never names it.
    let (kind, id) = one(admin.step(&url, 4, 0).output().unwrap());
    let run = open.catalog().resolve_run(&id).unwrap();
    assert_eq!((kind.as_str(), run.cache_source()), ("hit", Some(after.run.id.as_str())));
    drop(open);
    forget_local_state(&url);
}

#[test]
fn a_rebuild_by_one_host_keeps_every_other_hosts_runs() {
    let Some(server) = PgServer::start() else { return };
    let url = server.database("rebuilt");
    let ws = Workspace::new();
    let (a, b) = (Host::new("node-a", ws.path()), Host::new("node-b", ws.path()));
    assert!(a.steps(&url, &[1, 2]).output().unwrap().status.success());
    assert!(b.steps(&url, &[3]).output().unwrap().status.success());
    let out = a.cli(&url, &["db", "rebuild", "--run-dir", a.run_dir.to_str().unwrap()]);
    assert!(out.status.success() && said(&out).contains("left 1 other run(s)"), "{}", said(&out));
    let out = a.cli(&url, &["summary", "--json"]);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["runs"], 3, "node-b's run is still recorded: {summary}");
}

#[test]
fn a_live_run_is_never_a_zombie_and_a_dead_one_is_once_its_lease_lapses() {
    let Some(server) = PgServer::start() else { return };
    let url = server.database("zombies");
    let ws = Workspace::new();
    // Two containers with one host name.
    let (running, container) = (Host::new("box", ws.path()), Host::new("box", ws.path()));
    let mut child = running.step(&url, 21, 30_000).env("CONSIST_TEST_LEASE_TTL_MS", "1000").spawn().unwrap();
    let started = BufReader::new(child.stdout.take().unwrap()).lines().next().unwrap().unwrap();
    let run_id = started.strip_prefix("started ").unwrap().to_owned();
    // From a container (its own process ids: the running worker's pid is not there).
    let in_container = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(crate::process::worker())
        .args(["cli", "db", "fail-zombies", "--db-path", &url])
        .env("CONSIST_HOST", &container.name)
        .env("XDG_CACHE_HOME", container.state.path())
        .output();
    match in_container {
        Ok(out) if out.status.success() => {
            assert!(said(&out).contains("marked 0 zombie"), "a live run was marked failed: {}", said(&out))
        }
        other => eprintln!("\n*** SKIPPED the container half: unshare --pid is not allowed here ({other:?}) ***\n"),
    }
    let out = container.cli(&url, &["db", "fail-zombies"]);
    assert!(said(&out).contains("marked 0 zombie"), "{}", said(&out));
    child.kill().unwrap();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(1600));
    let out = container.cli(&url, &["db", "fail-zombies"]);
    assert!(said(&out).contains("marked 1 zombie") && said(&out).contains(&run_id), "{}", said(&out));
}

#[test]
fn four_hosts_execute_each_signature_once() {
    let Some(server) = PgServer::start() else { return };
    let url = server.database("fourhosts");
    let ws = Workspace::new();
    let hosts: Vec<Host> = (1..=4).map(|h| Host::new(&format!("node-{h}"), ws.path())).collect();
    let children: Vec<_> = hosts
        .iter()
        .enumerate()
        .map(|(h, host)| {
            let own = (0..5).map(|i| 1000 * (h as i64 + 1) + i);
            let values: Vec<i64> = (0..10).chain(own).collect();
            let mut command = host.steps(&url, &values);
            command.env("CONSIST_TEST_SLEEP_MS", "50");
            command.spawn().unwrap()
        })
        .collect();
    let mut all = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", said(&out));
        all.extend(results(&out));
    }
    let executed = all.iter().filter(|(kind, _, _)| kind == "executed").count();
    assert_eq!((all.len(), executed), (60, 30), "10 shared + 4 x 5 own signatures, each executed once");
    let runs = tracker(&ws.run_dir(), &url, CacheMode::Reuse)
        .catalog()
        .store()
        .find_runs(&RunQuery::default().model("square"))
        .unwrap();
    assert_eq!(runs.len(), 60, "every run recorded once");
    forget_local_state(&url);
}

#[test]
fn twins_in_one_tracker_on_a_shared_catalog_execute_once() {
    let Some(server) = PgServer::start() else { return };
    let url = server.database("threads");
    let ws = Workspace::new();
    let shared = tracker(&ws.run_dir(), &url, CacheMode::Reuse);
    let runs: Vec<_> = std::thread::scope(|s| {
        let twins: Vec<_> = (0..2)
            .map(|_| s.spawn(|| square(&shared, 12, || std::thread::sleep(Duration::from_millis(800)))))
            .collect();
        twins.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let hits = runs.iter().filter(|r| r.cache_hit()).count();
    assert_eq!(hits, 1, "two threads of one tracker hold one lease at a time: one executes, one waits and hits");
    drop(shared);
    forget_local_state(&url);
}

#[test]
fn a_run_marked_a_zombie_while_alive_is_completed_once_it_finishes() {
    let Some(server) = PgServer::start() else { return };
    let url = server.database("revived");
    let ws = Workspace::new();
    let host = Host::new("node-a", ws.path());
    let mut child = host.step(&url, 31, 2500).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let started = lines.next().unwrap().unwrap();
    let run_id = started.strip_prefix("started ").unwrap().to_owned();
    // Its lease lapses (an outage longer than its time-to-live, here made by hand), so another
    // host takes it for a zombie while it still runs.
    server.psql("revived", "DELETE FROM consist_lease");
    let out = Host::new("node-b", ws.path()).cli(&url, &["db", "fail-zombies"]);
    assert!(said(&out).contains("marked 1 zombie"), "{}", said(&out));
    let last = lines.last().unwrap().unwrap();
    assert!(child.wait().unwrap().success() && last.starts_with(&format!("executed {run_id}")), "{last}");
    let run = tracker(&ws.run_dir(), &url, CacheMode::Reuse).catalog().store().get_run(&run_id).unwrap().unwrap();
    assert_eq!(run.status, consist::RunStatus::Completed, "its completion replaced the zombie mark");
    let (kind, id) = one(Host::new("node-c", ws.path()).step(&url, 31, 0).output().unwrap());
    let hit = tracker(&ws.run_dir(), &url, CacheMode::Reuse).catalog().resolve_run(&id).unwrap();
    assert_eq!((kind.as_str(), hit.cache_source()), ("hit", Some(run_id.as_str())));
    forget_local_state(&url);
}

#[test]
fn an_open_tracker_serves_no_confirmed_entry_while_the_catalog_cannot_be_reached() {
    let Some(server) = PgServer::start() else { return };
    let url = server.database("cutoff");
    let ws = Workspace::new();
    let (_, first) = one(Host::new("node-a", ws.path()).step(&url, 9, 0).output().unwrap());
    let open = tracker(&ws.run_dir(), &url, CacheMode::Reuse);
    assert_eq!(square(&open, 9, || {}).run.cache_source(), Some(first.as_str()), "confirmed");
    // Cut off, it cannot know whether the run was purged since: it executes instead.
    server.stop();
    std::thread::sleep(consist::store::EPOCH_POLL + Duration::from_millis(100));
    let cut_off = square(&open, 9, || {});
    assert!(!cut_off.cache_hit(), "served {:?} without the catalog", cut_off.run.cache_source());
    server.resume();
    // The tracker tries the server again after a pause (a few seconds at most).
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(e) = open.flush() {
        assert!(e.is_unreachable() && Instant::now() < deadline, "{e}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(open.catalog().store().get_run(&cut_off.run.id).unwrap().is_some(), "recorded once it is back");
    drop(open);
    forget_local_state(&url);
}
