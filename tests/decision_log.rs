//! The decision log: what is recorded (never payloads), `sluice log` through the real binary,
//! retention by age and size, a full disk, and a writer that falls behind.

mod support;

use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sluice::config::{DecisionLogConfig, Dur, Size};
use sluice::policy::{Decider, DeciderOptions, PolicySet, Zone};
use sluice::telemetry::decision_log::{DecisionLog, Entry, now_ms};
use support::*;

fn config(path: std::path::PathBuf) -> DecisionLogConfig {
    DecisionLogConfig {
        path,
        sample_allowed: 0.0,
        max_age: Dur(Duration::from_secs(3600)),
        max_size: Size(1 << 30),
        queue: 10_000,
    }
}

/// Runs `sluice log ARGS`; returns (exit code, stdout, stderr).
fn sluice_log(args: &[&str]) -> (i32, String, String) {
    let out = sluice(&[&["log"], args].concat());
    (out.code, out.stdout, out.stderr)
}

fn json_rows(args: &[&str]) -> Vec<serde_json::Value> {
    let (code, out, err) = sluice_log(args);
    assert_eq!(code, 0, "sluice log {args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// A deny (export) and an allow (local publish) from the shipped policy.
fn decisions(d: &Decider, n_allowed: usize, log: &DecisionLog) {
    let s = source();
    let export = publish(&s, "cloud.example.com", 8883, Zone::External);
    let v = d.decide(&export);
    assert!(!v.allowed());
    if log.wants(false) {
        log.record(Entry::new(&export, &v, "d-export".into(), "rev-7".into()));
    }
    let local = publish(&s, "broker.plant.local", 1883, Zone::Local);
    for i in 0..n_allowed {
        let v = d.decide(&local);
        assert!(v.allowed());
        if log.wants(true) {
            log.record(Entry::new(
                &local,
                &v,
                format!("d-local-{i}"),
                "rev-7".into(),
            ));
        }
    }
}

#[test]
fn every_deny_and_a_sample_of_allows_are_queryable_with_sluice_log() {
    let dir = TempDir::new("dlog-query");
    let db = dir.join("decisions.db");
    let mut cfg = config(db.clone());
    cfg.sample_allowed = 0.5;
    let log = DecisionLog::open(&cfg).unwrap_or_else(|e| panic!("{e}"));
    let d = Decider::new(&PolicySet::embedded(), DeciderOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    decisions(&d, 4, &log);
    let stats = log.stats().clone();
    log.close();
    assert_eq!(stats.written.load(Ordering::Relaxed), 3);
    let dbs = db.display().to_string();

    let all = json_rows(&["--db", &dbs, "--format", "json"]);
    assert_eq!(all.len(), 3, "{all:?}");
    let deny = json_rows(&["--db", &dbs, "--format", "json", "--verdict", "deny"]);
    assert_eq!(deny.len(), 1);
    let row = &deny[0];
    assert_eq!(row["decision_id"], "d-export");
    assert_eq!(row["protocol"], "mqtt");
    assert_eq!(row["operation"], "publish");
    assert_eq!(row["target"], "cloud.example.com:8883");
    assert_eq!(row["resource"], "plant/line1/press7/temp");
    assert_eq!(row["verdict"], "deny");
    assert_eq!(row["revision"], "rev-7");
    assert_eq!(
        row["source"],
        serde_json::json!({"workload": "iot-data-processor", "client_id": "press-7"})
    );
    assert!(
        row["reasons"].as_array().is_some_and(|r| !r.is_empty()),
        "{row}"
    );
    // Exactly these fields: nothing that could carry a payload.
    let keys: Vec<_> = row
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    assert_eq!(
        keys,
        [
            "decision_id",
            "operation",
            "protocol",
            "reasons",
            "resource",
            "revision",
            "source",
            "target",
            "time",
            "verdict"
        ]
    );

    let allowed = json_rows(&["--db", &dbs, "--format", "json", "--verdict", "allow"]);
    assert_eq!(allowed.len(), 2);
    assert_eq!(
        json_rows(&[
            "--db",
            &dbs,
            "--format",
            "json",
            "--target",
            "cloud.example"
        ])
        .len(),
        1
    );
    assert_eq!(
        json_rows(&["--db", &dbs, "--format", "json", "--limit", "1"]).len(),
        1
    );
    assert_eq!(
        json_rows(&["--db", &dbs, "--format", "json", "--since", "10m"]).len(),
        3
    );
    assert_eq!(
        json_rows(&[
            "--db",
            &dbs,
            "--format",
            "json",
            "--since",
            "2999-01-01T00:00:00Z"
        ])
        .len(),
        0
    );

    let (code, text, _) = sluice_log(&["--db", &dbs, "--verdict", "deny"]);
    assert_eq!(code, 0);
    assert!(
        text.contains(" deny  d-export mqtt publish iot-data-processor/press-7 -> cloud.example.com:8883 plant/line1/press7/temp rev=rev-7 reasons="),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1);
}

#[test]
fn sluice_log_errors_are_one_line_with_exit_code_1() {
    let dir = TempDir::new("dlog-errors");
    let missing = dir.join("nope.db").display().to_string();
    let (code, out, err) = sluice_log(&["--db", &missing]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(
        err,
        format!(
            "sluice log: {missing}: no decision log here (is decision_log.path set in the config of sluice serve?)\n"
        )
    );
    let (code, _, err) = sluice_log(&["--db", &missing, "--since", "yesterday"]);
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    // The path comes from the config when --db is not given.
    let cfg = dir.join("sluice.yaml");
    std::fs::write(&cfg, format!("decision_log:\n  path: {missing}\n"))
        .unwrap_or_else(|e| panic!("{e}"));
    let (code, _, err) = sluice_log(&["-c", &cfg.display().to_string()]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with(&format!("sluice log: {missing}: ")),
        "{err}"
    );
}

fn entry(i: usize, time_ms: i64) -> Entry {
    Entry {
        time_ms,
        decision_id: format!("d-{i}"),
        protocol: "http",
        operation: "request",
        workload: "historian-sync".into(),
        client_id: String::new(),
        target: "upload.example.com:443".into(),
        resource: "/v1/upload".into(),
        allowed: false,
        reasons: vec![format!(
            "export of plant data to upload.example.com is not allowed ({i})"
        )],
        revision: "r1".into(),
    }
}

#[test]
fn rows_older_than_max_age_are_deleted() {
    let dir = TempDir::new("dlog-age");
    let db = dir.join("d.db");
    let log = DecisionLog::open(&config(db.clone())).unwrap_or_else(|e| panic!("{e}"));
    let two_hours_ago = now_ms() - 2 * 3600 * 1000;
    for i in 0..10 {
        log.record(entry(i, two_hours_ago));
    }
    log.record(entry(10, now_ms()));
    let stats = log.stats().clone();
    log.close();
    assert_eq!(stats.expired.load(Ordering::Relaxed), 10);
    let rows = json_rows(&["--db", &db.display().to_string(), "--format", "json"]);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["decision_id"], "d-10");
}

#[test]
fn the_oldest_rows_go_when_the_database_exceeds_max_size() {
    let dir = TempDir::new("dlog-size");
    let db = dir.join("d.db");
    let mut cfg = config(db.clone());
    cfg.max_size = Size(128 * 1024);
    let log = DecisionLog::open(&cfg).unwrap_or_else(|e| panic!("{e}"));
    for i in 0..5000 {
        log.record(entry(i, now_ms()));
    }
    let stats = log.stats().clone();
    log.close();
    assert_eq!(stats.written.load(Ordering::Relaxed), 5000);
    assert!(stats.expired.load(Ordering::Relaxed) > 0);
    let size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(u64::MAX);
    assert!(size <= 128 * 1024, "database is {size} bytes");
    let rows = json_rows(&[
        "--db",
        &db.display().to_string(),
        "--format",
        "json",
        "--limit",
        "1",
    ]);
    assert_eq!(rows[0]["decision_id"], "d-4999", "the newest row is kept");
}

#[test]
fn a_writer_that_falls_behind_drops_and_counts_instead_of_blocking() {
    let dir = TempDir::new("dlog-full-queue");
    let mut cfg = config(dir.join("d.db"));
    cfg.queue = 1;
    let log = DecisionLog::open(&cfg).unwrap_or_else(|e| panic!("{e}"));
    for i in 0..10_000 {
        log.record(entry(i, now_ms()));
    }
    let stats = log.stats().clone();
    log.close();
    let (written, dropped) = (
        stats.written.load(Ordering::Relaxed),
        stats.dropped_full.load(Ordering::Relaxed),
    );
    assert_eq!(written + dropped, 10_000);
    assert!(dropped > 0, "written {written}, dropped {dropped}");
}

/// Unmounts the tmpfs when the test ends, however it ends.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A real full disk: a 256 KiB tmpfs (mounting needs root, as in CI).
#[test]
fn a_full_disk_drops_and_counts_entries_and_the_log_stays_readable() {
    let dir = TempDir::new("dlog-disk");
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap_or_else(|e| panic!("{e}"));
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&mnt)
        .output()
        .unwrap_or_else(|e| panic!("mount: {e}"));
    assert!(
        mounted.status.success(),
        "this test mounts a tmpfs and needs root: {}",
        String::from_utf8_lossy(&mounted.stderr)
    );
    let _guard = Mount(mnt.clone());
    let db = mnt.join("d.db");
    let log = DecisionLog::open(&config(db.clone())).unwrap_or_else(|e| panic!("{e}"));
    for round in 0..40 {
        for i in 0..250 {
            log.record(entry(round * 250 + i, now_ms()));
        }
        // Let the writer take batches, as traffic would over time.
        std::thread::sleep(Duration::from_millis(5));
    }
    let stats = log.stats().clone();
    log.close();
    let (written, failed) = (
        stats.written.load(Ordering::Relaxed),
        stats.dropped_error.load(Ordering::Relaxed),
    );
    assert!(
        written > 0 && failed > 0,
        "written {written}, failed {failed}"
    );
    assert_eq!(
        written + failed + stats.dropped_full.load(Ordering::Relaxed),
        10_000
    );
    let rows = json_rows(&[
        "--db",
        &db.display().to_string(),
        "--format",
        "json",
        "--limit",
        "5",
    ]);
    assert_eq!(rows.len(), 5);
}
