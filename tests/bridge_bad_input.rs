//! The export bridge against bad input: a remote broker that refuses the CONNECT, one that
//! accepts and never acknowledges (until a real broker takes its address), a message over the
//! remote's packet size, a spool file that is not SQLite, a spool from a newer sluice, a bridge
//! looping to its own broker, and a full disk (a small tmpfs). Each is a clear log line and a
//! metric, the gateway keeps serving, and nothing allowed is lost. Also
//! `sluice spool stats|ls|purge` on a real spool, and `stats|ls` on the full disk.
//!
//! Needs /usr/sbin/mosquitto and mosquitto_passwd; the disk-full test needs root (mount).

mod bridge_support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

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

/// A broker that accepts the CONNECT and then never answers a PUBLISH, until stopped (which
/// closes its connections and frees its address).
struct SilentBroker {
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl SilentBroker {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.2:0").unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let _ = listener.set_nonblocking(true);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let accept = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                let Ok((mut conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let flag = Arc::clone(&flag);
                std::thread::spawn(move || {
                    let _ = conn.set_nonblocking(false);
                    let _ = conn.set_read_timeout(Some(Duration::from_millis(50)));
                    let mut buf = [0u8; 4096];
                    let mut connacked = false;
                    while !flag.load(Ordering::SeqCst) {
                        match conn.read(&mut buf) {
                            Ok(0) => return,
                            Ok(_) if !connacked => {
                                connacked = conn.write_all(&[0x20, 0x02, 0x00, 0x00]).is_ok();
                            }
                            Ok(_) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                            Err(_) => return,
                        }
                    }
                    let _ = conn.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Self {
            addr,
            stop,
            accept: Some(accept),
        }
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

impl Drop for SilentBroker {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_that_never_acknowledges_keeps_the_messages_until_a_real_broker_takes_them() {
    let dir = Dir::new("silent");
    let plant = Broker::started("127.0.0.1", "");
    let mut silent = SilentBroker::start();
    write_policy(&dir, "127.0.0.2", &["plant/+/aggregates/#"]);
    let (cfg, admin) = bridge_config(
        &dir,
        &plant,
        &silent.addr.to_string(),
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

    // A real broker on the same address: everything still in the spool reaches it.
    silent.stop();
    let mut cloud = Broker::on(silent.addr, "");
    cloud.gate();
    cloud.start();
    let arrivals = cloud_subscriber(cloud.addr).await;
    cloud.open_gate();
    arrivals.wait_or("a-", 10, || sluice.logs());
    sluice.wait_bridge("sent_total", 10.0);
    sluice.wait_spool_empty();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_remotes_packet_size_is_refused_once_and_the_rest_flow() {
    let dir = Dir::new("toolarge");
    let plant = Broker::started("127.0.0.1", "");
    let cloud = Broker::new("127.0.0.2", "");
    cloud.gate();
    let mut cloud = cloud;
    cloud.start();
    let arrivals = cloud_subscriber(cloud.addr).await;
    cloud.open_gate();
    write_policy(&dir, "127.0.0.2", &["plant/+/aggregates/#"]);
    let bridge = format!(
        "name: cloud\nlocal: {{broker: {}}}\nremote: {{broker: {}, max_packet_size: 1KiB}}\ntopics: [\"plant/#\"]\nspool: {{path: {}}}\n",
        plant.addr,
        cloud.addr,
        dir.path("cloud.db").display()
    );
    let (cfg, admin) = bridges_config(&dir, &[bridge], "");
    let sluice = Sluice::start(&dir, &cfg, admin);
    sluice.wait_bridge("uplink_up", 1.0);
    let mut msgs = messages(ALLOWED, "a-", 10);
    msgs.push((ALLOWED.to_string(), format!("big-{}", "x".repeat(2000))));
    msgs.extend(messages(ALLOWED, "b-", 10));
    publish_all(plant.addr, msgs).await;
    arrivals.wait_or("b-", 10, || sluice.logs());
    assert_eq!(arrivals.count("a-"), 10);
    assert_eq!(arrivals.count("big-"), 0, "an oversized message was sent");
    sluice.wait_spool_empty();
    assert_eq!(sluice.bridge("dropped_total{reason=\"too_large\"}"), 1.0);
    assert_eq!(sluice.bridge("sent_total"), 20.0);
    let lines: Vec<String> = sluice
        .logs()
        .lines()
        .filter(|l| l.contains("max_packet_size"))
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("WARN"), "{lines:?}");
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
    // As the other bridge tests: publish once the bridge's local session is up, or the first
    // messages can reach the plant broker before the bridge has subscribed.
    sluice.wait_bridge("local_up", 1.0);
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

    // Read-only inspection works on the full disk, beside the running bridge.
    let path = disk.0.join("cloud.db").display().to_string();
    let (code, out, err) = sluice_cmd(&["spool", "stats", &path, "--format", "json"]);
    assert_eq!(code, 0, "spool stats on a full disk: {err}");
    let stats: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    assert!(stats["messages"].as_u64().unwrap_or(0) > 0, "{out}");
    let (code, out, err) = sluice_cmd(&["spool", "ls", &path, "--limit", "3"]);
    assert_eq!(code, 0, "spool ls on a full disk: {err}");
    assert_eq!(out.lines().count(), 4, "{out}");

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
