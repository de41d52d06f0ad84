//! The export bridge against bad input: a remote broker that refuses the CONNECT, one that
//! accepts and never acknowledges, a spool file that is not SQLite, a spool from a newer
//! sluice, a bridge looping to its own broker, and a full disk (a small tmpfs). Each is a clear
//! log line and a metric, the gateway keeps serving, and nothing allowed is lost. Also
//! `sluice spool stats|ls|purge` on a real spool.
//!
//! Needs /usr/sbin/mosquitto and mosquitto_passwd; the disk-full test needs root (mount).

mod bridge_support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;

use bridge_support::*;

const ALLOWED: &str = "plant/line1/aggregates/hourly";

fn sluice_cmd(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("sluice: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_refusing_connect_is_logged_and_counted_and_the_spool_can_be_inspected() {
    let dir = Dir::new("refused");
    let plant = Broker::started("127.0.0.1", "");
    // Only the watcher may log in: sluice's CONNECT is refused (not authorised).
    let cloud = Broker::new("127.0.0.2", "");
    cloud.gate();
    let mut cloud = cloud;
    cloud.start();
    write_policy(
        &dir,
        "127.0.0.2",
        &["plant/+/aggregates/#", "plant/+/oee/#"],
    );
    let spool = dir.path("cloud.db");
    let (cfg, admin) = bridge_config(
        &dir,
        &plant,
        &cloud.addr.to_string(),
        &format!("spool: {{path: {}}}", spool.display()),
        "",
    );
    let sluice = Sluice::start(&dir, &cfg, admin);
    sluice.wait_bridge("errors_total{kind=\"connect_refused\"}", 1.0);
    wait_until(
        || sluice.logs().contains("refused the CONNECT"),
        || sluice.logs(),
    );
    let mut msgs = messages(ALLOWED, "a-", 30);
    msgs.extend(messages("plant/line1/oee/shift", "o-", 20));
    publish_all(plant.addr, msgs).await;
    sluice.wait_bridge("spooled_total", 50.0);
    assert_eq!(sluice.bridge("spool_messages"), 50.0);
    assert_eq!(sluice.bridge("uplink_up"), 0.0);

    let path = spool.display().to_string();
    let (code, out, err) = sluice_cmd(&["spool", "stats", &path, "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let stats: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    assert_eq!(stats["messages"], 50, "{out}");
    let (code, out, _) = sluice_cmd(&["spool", "ls", &path, "--topic", "plant/+/oee/#"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 21, "{out}");
    assert!(!out.contains("o-1"), "payloads are never printed: {out}");
    let (code, out, _) = sluice_cmd(&[
        "spool",
        "purge",
        &path,
        "--topic",
        "plant/+/oee/#",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), r#"{"purged":20,"topic":"plant/+/oee/#"}"#);
    let (code, out, _) = sluice_cmd(&["spool", "stats", &path]);
    assert_eq!(code, 0);
    assert!(out.contains("messages: 30"), "{out}");
    let (code, _, err) = sluice_cmd(&["spool", "purge", &path, "--topic", "a/#/b"]);
    assert_eq!((code, err.lines().count()), (1, 1), "{err}");
    let (code, _, err) = sluice_cmd(&["spool", "stats", "/nonexistent/cloud.db"]);
    assert_eq!(code, 1);
    assert!(err.contains("no such spool file"), "{err}");
}

/// A broker that accepts the CONNECT and then never answers a PUBLISH.
fn silent_broker() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.2:0").unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    std::thread::spawn(move || {
        for mut conn in listener.incoming().map_while(Result::ok) {
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                if conn.read(&mut buf).is_ok_and(|n| n > 0) {
                    let _ = conn.write_all(&[0x20, 0x02, 0x00, 0x00]);
                }
                while conn.read(&mut buf).is_ok_and(|n| n > 0) {}
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_that_never_acknowledges_keeps_the_messages_and_they_are_sent_again() {
    let dir = Dir::new("silent");
    let plant = Broker::started("127.0.0.1", "");
    let remote = silent_broker();
    write_policy(&dir, "127.0.0.2", &["plant/+/aggregates/#"]);
    let (cfg, admin) = bridge_config(
        &dir,
        &plant,
        &remote.to_string(),
        &format!("spool: {{path: {}}}", dir.path("cloud.db").display()),
        "",
    );
    let sluice = Sluice::start(&dir, &cfg, admin);
    sluice.wait_bridge("uplink_up", 1.0);
    publish_all(plant.addr, messages(ALLOWED, "a-", 10)).await;
    sluice.wait_bridge("errors_total{kind=\"ack_timeout\"}", 1.0);
    sluice.wait_bridge("redelivered_total", 10.0);
    assert_eq!(sluice.bridge("spool_messages"), 10.0);
    assert_eq!(sluice.bridge("sent_total"), 0.0);
    assert!(
        sluice.logs().contains("remote.ack_timeout"),
        "{}",
        sluice.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_that_is_not_sqlite_is_moved_aside_and_a_fresh_one_used() {
    let dir = Dir::new("garbage");
    let plant = Broker::started("127.0.0.1", "");
    let cloud = Broker::started("127.0.0.2", "");
    write_policy(&dir, "127.0.0.2", &["plant/+/aggregates/#"]);
    let spool = dir.file("cloud.db", &"this is not a database\n".repeat(200));
    let (cfg, admin) = bridge_config(
        &dir,
        &plant,
        &cloud.addr.to_string(),
        &format!("spool: {{path: {}}}", spool.display()),
        "",
    );
    let sluice = Sluice::start(&dir, &cfg, admin);
    wait_until(|| sluice.logs().contains("moved aside"), || sluice.logs());
    assert_eq!(sluice.bridge("errors_total{kind=\"spool_corrupt\"}"), 1.0);
    let aside: Vec<_> = std::fs::read_dir(&dir.0)
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    let aside: Vec<_> = aside
        .iter()
        .filter_map(|n| n.to_str())
        .filter(|n| n.starts_with("cloud.db.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    let kept = std::fs::read_to_string(dir.path(aside[0])).unwrap_or_default();
    assert!(kept.starts_with("this is not a database"));
    publish_all(plant.addr, messages(ALLOWED, "a-", 5)).await;
    sluice.wait_bridge("sent_total", 5.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_from_a_newer_sluice_is_refused_untouched_and_the_gateway_keeps_serving() {
    let dir = Dir::new("future");
    let plant = Broker::started("127.0.0.1", "");
    write_policy(&dir, "127.0.0.2", &["plant/+/aggregates/#"]);
    let spool = dir.path("cloud.db");
    {
        let db = rusqlite::Connection::open(&spool).unwrap_or_else(|e| panic!("{e}"));
        db.execute_batch(
            "PRAGMA application_id=1936487280; CREATE TABLE spool2 (x); PRAGMA user_version=99;",
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }
    let (cfg, admin) = bridge_config(
        &dir,
        &plant,
        "127.0.0.2:1",
        &format!("spool: {{path: {}}}", spool.display()),
        "",
    );
    let sluice = Sluice::start(&dir, &cfg, admin);
    wait_until(
        || sluice.logs().contains("bridge not started"),
        || sluice.logs(),
    );
    assert!(
        sluice.logs().contains("schema version 99"),
        "{}",
        sluice.logs()
    );
    assert_eq!(sluice.bridge("errors_total{kind=\"spool_version\"}"), 1.0);
    assert_eq!(sluice.bridge("local_up"), 0.0);
    assert!(sluice.metrics().contains("sluice_ready 1"));
    let db = rusqlite::Connection::open(&spool).unwrap_or_else(|e| panic!("{e}"));
    let v: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap_or(0);
    assert_eq!(v, 99);
}

#[test]
fn a_bridge_from_a_broker_to_itself_is_refused_at_config_load() {
    let dir = Dir::new("loop");
    let cfg = dir.file(
        "sluice.yaml",
        "http: null\nbridges:\n  - name: cloud\n    local: {broker: 127.0.0.1:1883}\n    remote: {broker: localhost:1883}\n    topics: [\"#\"]\n    spool: {path: /tmp/x.db}\n",
    );
    let (code, _, err) = sluice_cmd(&["serve", "-c", &cfg.display().to_string()]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("bridges[0].remote.broker"), "{err}");
    assert!(err.contains("loop"), "{err}");
}

/// A tmpfs mounted for one test, unmounted on drop (lazily, whatever still holds it).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: std::path::PathBuf, size: &str) -> Self {
        let _ = std::fs::create_dir_all(&at);
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&at)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "mount -t tmpfs failed (the disk-full test needs root)");
        Self(at)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_counted_not_a_crash_and_nothing_is_lost() {
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    let dir = Dir::new("diskfull");
    let disk = Tmpfs::mount(dir.path("disk"), "4m");
    let plant = Broker::started("127.0.0.1", "");
    let (mut cloud, arrivals) = cloud_down().await;
    write_policy(&dir, "127.0.0.2", &["plant/+/aggregates/#"]);
    let (cfg, admin) = bridge_config(
        &dir,
        &plant,
        &cloud.addr.to_string(),
        &format!("spool: {{path: {}}}", disk.0.join("cloud.db").display()),
        "",
    );
    let mut sluice = Sluice::start(&dir, &cfg, admin);
    sluice.wait_bridge("local_up", 1.0);
    let pad = "x".repeat(1000);
    let msgs = (0..5000)
        .map(|i| (ALLOWED.to_string(), format!("m-{i}-{pad}")))
        .collect();
    publish_all(plant.addr, msgs).await;
    sluice.wait_bridge("errors_total{kind=\"disk_full\"}", 1.0);
    assert!(sluice.exited().is_none(), "{}", sluice.logs());
    assert!(sluice.logs().contains("disk full"), "{}", sluice.logs());

    cloud_back(&mut cloud, &arrivals);
    arrivals.wait_or("m-", 5000, || {
        let logs: Vec<String> = sluice
            .logs()
            .lines()
            .filter(|l| !l.contains("denied"))
            .map(String::from)
            .collect();
        format!("{}\n{}", sluice.bridge_metrics(), logs.join("\n"))
    });
    drop(sluice);
    drop(disk);
}
