//! Policy distribution and decision-log benchmarks, each against a baseline from the same run:
//!
//! 1. change → activation: a watched directory and a bundle server (poll 100–200 ms) against
//!    the bare `Decider::reload` of the same policy;
//! 2. reload cost: decision latency percentiles while reloading every 20 ms against steady state;
//! 3. decision log: sustained write rate without drops against bare batched SQLite inserts.
//!
//! Run with `cargo bench --bench reload`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sluice::config::{DecisionLogConfig, Dur, Size};
use sluice::policy::bundle::source::PolicySources;
use sluice::policy::bundle::status::PolicyStatus;
use sluice::policy::{Decider, DeciderOptions, PolicySet, Zone};
use sluice::telemetry::decision_log::{DecisionLog, Entry, SCHEMA, now_ms};
use support::*;

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn us(d: Duration) -> String {
    format!("{:.2} µs", d.as_secs_f64() * 1e6)
}

fn policy_dir(dir: &std::path::Path, ports: &[u16]) {
    let _ = std::fs::create_dir_all(dir.join("manufacturing"));
    let _ = std::fs::create_dir_all(dir.join("gate"));
    let _ = std::fs::write(dir.join("manufacturing/smart.rego"), POLICY);
    let _ = std::fs::write(
        dir.join("gate/data.json"),
        serde_json::json!({ "ports": ports }).to_string(),
    );
}

fn start(
    yaml: &str,
) -> (
    Decider,
    Arc<PolicyStatus>,
    sluice::policy::bundle::source::SourceHandle,
) {
    let cfg = policy_config(yaml);
    let sources = PolicySources::from_config(&cfg).unwrap_or_else(|e| panic!("{e}"));
    let (startup, decider, status) = sources
        .open(DeciderOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let handle = sources
        .start(decider.clone(), status.clone(), &startup)
        .unwrap_or_else(|e| panic!("{e}"));
    (decider, status, handle)
}

fn activation(rt: &tokio::runtime::Runtime) {
    const ROUNDS: usize = 10;
    println!("== change -> activation ({ROUNDS} changes each)");
    // Baseline: compiling and swapping the same policy directly.
    let d = Decider::new(&PolicySet::embedded(), DeciderOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut base = Vec::new();
    for i in 0..ROUNDS {
        let set = PolicySet {
            modules: vec![sluice::policy::Module {
                path: "p.rego".into(),
                text: POLICY.into(),
            }],
            data: serde_json::json!({"gate": {"ports": [1000 + i as u16]}}),
            rego_v0: false,
        };
        let t = Instant::now();
        let _ = d.reload(&set, "b");
        base.push(t.elapsed());
    }
    base.sort();
    let base_p50 = pct(&base, 0.5);
    println!(
        "baseline Decider::reload (compile + swap): p50 {}  max {}",
        ms(base_p50),
        ms(pct(&base, 1.0))
    );

    let dir = TempDir::new("bench-watch");
    let policies = dir.join("p");
    policy_dir(&policies, &[1]);
    let (d, _s, _h) = start(&format!(
        "policy:\n  paths: [{}]\n  watch: true\n",
        policies.display()
    ));
    let mut lat = Vec::new();
    for i in 0..ROUNDS {
        let port = 2000 + i as u16;
        let t = Instant::now();
        policy_dir(&policies, &[port]);
        while !allows(&d, port) {
            std::thread::sleep(Duration::from_millis(1));
        }
        lat.push(t.elapsed());
    }
    lat.sort();
    println!(
        "watched directory (poll 250 ms + debounce 100 ms): p50 {}  max {}  ({:.0}x baseline)",
        ms(pct(&lat, 0.5)),
        ms(pct(&lat, 1.0)),
        pct(&lat, 0.5).as_secs_f64() / base_p50.as_secs_f64()
    );

    let _guard = rt.enter();
    let server = BundleHttp::start(tar_gz(&bundle_files("r0", &[1])), "\"r0\"");
    let (d, _s, _h) = start(&format!(
        "policy:\n  bundle:\n    url: {}\n    poll_min: 100ms\n    poll_max: 200ms\n",
        server.url()
    ));
    // The first bundle must be active before timing (until then the embedded policy serves).
    while d.revision() != "r0" {
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut lat = Vec::new();
    for i in 0..ROUNDS {
        let port = 3000 + i as u16;
        let t = Instant::now();
        server.set(
            tar_gz(&bundle_files(&format!("r{}", i + 1), &[port])),
            &format!("\"r{}\"", i + 1),
        );
        let want = format!("r{}", i + 1);
        while d.revision() != want {
            std::thread::sleep(Duration::from_millis(1));
        }
        lat.push(t.elapsed());
        assert!(allows(&d, port));
    }
    lat.sort();
    println!(
        "bundle server (poll 100-200 ms, download + verify + compile): p50 {}  max {}  ({:.0}x baseline)",
        ms(pct(&lat, 0.5)),
        ms(pct(&lat, 1.0)),
        pct(&lat, 0.5).as_secs_f64() / base_p50.as_secs_f64()
    );
}

/// Latencies of decisions over `inputs` (a few distinct ones, so most hit the cache) for `dur`.
fn decide_for(d: &Decider, dur: Duration) -> Vec<Duration> {
    let s = source();
    let hosts = [
        "broker.plant.local",
        "historian.plant.local",
        "cloud.example.com",
    ];
    let mut out = Vec::with_capacity(1 << 20);
    let end = Instant::now() + dur;
    let mut i = 0usize;
    while Instant::now() < end {
        let host = hosts[i % hosts.len()];
        let zone = if host.ends_with(".local") {
            Zone::Local
        } else {
            Zone::External
        };
        let input = publish(&s, host, 1883 + (i % 7) as u16, zone);
        let t = Instant::now();
        let v = d.decide(&input);
        out.push(t.elapsed());
        std::hint::black_box(v);
        i += 1;
    }
    out.sort();
    out
}

fn reload_cost() {
    println!("== decision latency during reloads (1 deciding thread, 21 distinct inputs)");
    let d = Decider::new(&PolicySet::embedded(), DeciderOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = decide_for(&d, Duration::from_millis(300));
    let steady = decide_for(&d, Duration::from_secs(3));
    let stop = Arc::new(AtomicBool::new(false));
    let reloader = {
        let (d, stop) = (d.clone(), stop.clone());
        std::thread::spawn(move || {
            let set = PolicySet::embedded();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let _ = d.reload(&set, "r");
                n += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            n
        })
    };
    let during = decide_for(&d, Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    let reloads = reloader.join().unwrap_or(0);
    for (name, p) in [("p50", 0.5), ("p99", 0.99), ("p999", 0.999)] {
        let (a, b) = (pct(&steady, p), pct(&during, p));
        println!(
            "{name}: steady {}  during reloads {}  ({:.2}x)",
            us(a),
            us(b),
            b.as_secs_f64() / a.as_secs_f64().max(1e-12)
        );
    }
    println!(
        "decisions: steady {}  during {} ({} reloads, every 20 ms)",
        steady.len(),
        during.len(),
        reloads
    );
}

fn entry(i: usize) -> Entry {
    Entry {
        time_ms: now_ms(),
        decision_id: format!("bench-{i:08}"),
        protocol: "mqtt",
        operation: "publish",
        workload: "iot-data-processor".into(),
        client_id: "press-7".into(),
        target: "cloud.example.com:8883".into(),
        resource: "plant/line1/press7/temp".into(),
        allowed: false,
        reasons: vec!["data must stay local".into()],
        revision: "r1".into(),
    }
}

fn decision_log() {
    println!("== decision log write rate");
    let dir = TempDir::new("bench-dlog");
    const N: usize = 200_000;
    // Baseline: bare batched inserts (1024 per transaction) with the same schema and pragmas.
    let conn = rusqlite::Connection::open(dir.join("bare.db")).unwrap_or_else(|e| panic!("{e}"));
    let _ = conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
    let _ = conn.execute_batch(SCHEMA);
    let t = Instant::now();
    let mut conn = conn;
    for chunk in (0..N).collect::<Vec<_>>().chunks(1024) {
        let tx = conn.transaction().unwrap_or_else(|e| panic!("{e}"));
        {
            let mut st = tx
                .prepare_cached("INSERT INTO decisions (time_ms, decision_id, protocol, operation, workload, client_id, target, resource, verdict, reasons, revision) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)")
                .unwrap_or_else(|e| panic!("{e}"));
            for i in chunk {
                let e = entry(*i);
                let _ = st.execute(rusqlite::params![
                    e.time_ms,
                    e.decision_id,
                    e.protocol,
                    e.operation,
                    e.workload,
                    e.client_id,
                    e.target,
                    e.resource,
                    "deny",
                    "[\"data must stay local\"]",
                    e.revision
                ]);
            }
        }
        let _ = tx.commit();
    }
    let bare = N as f64 / t.elapsed().as_secs_f64();
    println!("baseline bare SQLite batched inserts: {bare:.0} rows/s");

    // Throughput: everything offered at once into a queue that holds it all.
    let cfg = DecisionLogConfig {
        path: dir.join("log.db"),
        sample_allowed: 0.0,
        max_age: Dur(Duration::from_secs(3600)),
        max_size: Size(1 << 30),
        queue: N,
    };
    let log = DecisionLog::open(&cfg).unwrap_or_else(|e| panic!("{e}"));
    let stats = log.stats().clone();
    let t = Instant::now();
    let mut offer = Duration::ZERO;
    for i in 0..N {
        let e = entry(i);
        let o = Instant::now();
        log.record(e);
        offer += o.elapsed();
    }
    while stats.written.load(Ordering::Relaxed) < N as u64 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let rate = N as f64 / t.elapsed().as_secs_f64();
    drop(log);
    println!(
        "decision log writer: {rate:.0} rows/s ({:.2}x baseline); record() {:.0} ns per entry on the data path",
        rate / bare,
        offer.as_nanos() as f64 / N as f64
    );

    // Sustained: paced offers at fixed rates for 2 s with the default queue (10 000).
    for per_sec in [20_000u64, 50_000, 100_000] {
        let mut cfg = cfg.clone();
        cfg.path = dir.join(&format!("paced-{per_sec}.db"));
        cfg.queue = 10_000;
        let log = DecisionLog::open(&cfg).unwrap_or_else(|e| panic!("{e}"));
        let stats = log.stats().clone();
        let start = Instant::now();
        let total = per_sec * 2;
        for i in 0..total {
            let due = start + Duration::from_secs_f64(i as f64 / per_sec as f64);
            while Instant::now() < due {
                std::hint::spin_loop();
            }
            log.record(entry(i as usize));
        }
        log.close();
        println!(
            "paced {per_sec} entries/s for 2 s, queue 10000: written {}  dropped {}",
            stats.written.load(Ordering::Relaxed),
            stats.dropped_full.load(Ordering::Relaxed)
        );
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    activation(&rt);
    reload_cost();
    decision_log();
}
