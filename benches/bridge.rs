//! The export bridge in one run: throughput (messages/s, plant broker → cloud broker) through
//! `sluice serve`'s bridge and through mosquitto's own bridge on the same two brokers; the
//! spool's write and replay rates (in process); the end-to-end replay of a backlog once the
//! cloud is back; and sluice's resident memory with 1,000,000 messages spooled.
//!
//! `cargo bench --bench bridge [-- --quick]` (needs /usr/sbin/mosquitto). The full run uses
//! 100,000 messages for throughput and 1,000,000 spooled for the memory figure; `--quick`
//! 20,000 and 100,000; `SLUICE_BENCH_MESSAGES` and `SLUICE_BENCH_SPOOLED` set either (CI's
//! short form: `SLUICE_BENCH_MESSAGES=2000 SLUICE_BENCH_SPOOLED=5000`). Every wait has a
//! deadline and says what it was waiting for, so a stall is reported, not a hang.

mod common;

use std::collections::HashSet;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use sluice::bridge::spool::{NewMessage, Spool};
use sluice::config::OnFull;

const TOPIC: &str = "plant/line1/aggregates/hourly";
const PAYLOAD: usize = 64;

fn wait_port(addr: SocketAddr) {
    let start = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
        if start.elapsed() > Duration::from_secs(20) {
            eprintln!("bridge bench: nothing listens on {addr}");
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn mosquitto(dir: &Path, name: &str, addr: SocketAddr, extra: &str) -> common::Proc {
    let conf = dir.join(format!("{name}.conf"));
    let _ = std::fs::write(
        &conf,
        format!(
            "listener {} {}\nallow_anonymous true\npersistence false\nmax_queued_messages 0\nmax_inflight_messages 1000\nset_tcp_nodelay true\nlog_dest none\n{extra}\n",
            addr.port(),
            addr.ip()
        ),
    );
    let child = Command::new("/usr/sbin/mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(child) = child else {
        eprintln!("bridge bench: cannot run /usr/sbin/mosquitto");
        std::process::exit(1);
    };
    wait_port(addr);
    common::Proc(child)
}

fn metric(admin: SocketAddr, sample: &str) -> f64 {
    use std::io::{Read, Write};
    let Ok(mut s) = TcpStream::connect(admin) else {
        return 0.0;
    };
    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.lines()
        .find_map(|l| l.strip_prefix(sample).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

/// Counts distinct payloads arriving at the cloud broker.
async fn subscriber(cloud: SocketAddr, id: &str) -> Arc<Mutex<HashSet<Bytes>>> {
    let mut opts = MqttOptions::new(id, cloud.ip().to_string(), cloud.port());
    opts.set_inflight(1000).set_clean_session(false);
    let (client, mut events) = AsyncClient::new(opts, 100);
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let sink = Arc::clone(&seen);
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut tx = Some(tx);
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(a))) if !a.session_present => {
                    let _ = client.subscribe("plant/#", QoS::AtLeastOnce).await;
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(t) = tx.take() {
                        let _ = t.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    sink.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(p.payload);
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    });
    let _ = tokio::time::timeout(Duration::from_secs(10), rx).await;
    seen
}

/// Publishes `n` QoS 1 messages with distinct payloads (`tag` + number) as fast as acked;
/// returns how many the broker acknowledged.
async fn publish(plant: SocketAddr, tag: &str, n: usize) -> usize {
    let mut opts = MqttOptions::new(
        format!("bench-pub-{tag}"),
        plant.ip().to_string(),
        plant.port(),
    );
    opts.set_inflight(1000);
    let (client, mut events) = AsyncClient::new(opts, 2000);
    let tag = tag.to_string();
    tokio::spawn(async move {
        for i in 0..n {
            let mut p = format!("{tag}-{i:09}-").into_bytes();
            p.resize(PAYLOAD, b'x');
            if client
                .publish(TOPIC, QoS::AtLeastOnce, false, p)
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let mut acked = 0;
    while acked < n {
        match tokio::time::timeout(Duration::from_secs(60), events.poll()).await {
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => acked += 1,
            Ok(Ok(_)) => {}
            other => {
                eprintln!("bridge bench: publisher: {other:?} after {acked} of {n}");
                return acked;
            }
        }
    }
    acked
}

/// Polls `sample` on sluice's admin endpoint until it reaches `target`; false (and a line
/// saying where it stopped) after `limit`.
fn wait_metric(admin: SocketAddr, sample: &str, target: f64, limit: Duration) -> bool {
    let start = Instant::now();
    loop {
        let v = metric(admin, sample);
        if v >= target {
            return true;
        }
        if start.elapsed() > limit {
            eprintln!("bridge bench: {sample} stopped at {v} of {target}");
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn wait_arrivals(seen: &Arc<Mutex<HashSet<Bytes>>>, n: usize, limit: Duration) -> bool {
    let start = Instant::now();
    while seen.lock().unwrap_or_else(|e| e.into_inner()).len() < n {
        if start.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

/// Messages/s from the first publish to the last arrival at the cloud.
async fn throughput(plant: SocketAddr, cloud: SocketAddr, tag: &str, n: usize) -> f64 {
    let seen = subscriber(cloud, &format!("bench-sub-{tag}")).await;
    let start = Instant::now();
    publish(plant, tag, n).await;
    if !wait_arrivals(&seen, n, Duration::from_secs(300)).await {
        let got = seen.lock().map(|s| s.len()).unwrap_or(0);
        eprintln!("bridge bench: {tag}: only {got} of {n} arrived");
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn spool_rates(dir: &Path, n: usize) -> (f64, f64) {
    let Ok(opened) = Spool::open(&dir.join("bench-spool.db")) else {
        return (0.0, 0.0);
    };
    let mut spool = opened.spool;
    let msg = NewMessage {
        topic: TOPIC.into(),
        payload: Bytes::from(vec![b'x'; PAYLOAD]),
        qos: 1,
        retain: false,
    };
    let batch: Vec<NewMessage> = (0..1000).map(|_| msg.clone()).collect();
    let start = Instant::now();
    for _ in 0..n / 1000 {
        let _ = spool.insert(&batch, 1, u64::MAX, OnFull::RefuseNew);
    }
    let write = n as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    let mut after = 0;
    while let Ok(rows) = spool.fetch(after, i64::MAX, 1000) {
        let Some(last) = rows.last() else { break };
        after = last.id;
        let _ = spool.mark_sent(rows[0].id, last.id);
        let ids: Vec<i64> = rows.iter().map(|m| m.id).collect();
        let _ = spool.delete(&ids);
    }
    (write, n as f64 / start.elapsed().as_secs_f64())
}

fn sluice_config(dir: &Path, plant: SocketAddr, cloud: SocketAddr, admin: SocketAddr) -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = dir.join("data/manufacturing");
    let _ = std::fs::create_dir_all(&data);
    let _ = std::fs::write(
        data.join("data.json"),
        format!(
            r#"{{"export_allowlist": [{{"name": "bench", "host": "{}", "protocols": ["mqtt"], "topics": ["plant/+/aggregates/#"]}}]}}"#,
            cloud.ip()
        ),
    );
    let cfg = dir.join("sluice.yaml");
    let _ = std::fs::write(
        &cfg,
        format!(
            "http: null\nlog: {{level: warn}}\nadmin: {{listen: {admin}}}\nsite: {{name: plant-042, local_networks: [127.0.0.1/32], local_domains: [localhost]}}\npolicy:\n  paths: [{}, {}, {}]\n  decision: data.manufacturing.egress\nbridges:\n  - name: cloud\n    local: {{broker: {plant}}}\n    remote: {{broker: {cloud}}}\n    topics: [\"plant/#\"]\n    spool: {{path: {}, max_bytes: 1GiB}}\n    replay: {{inflight: 1000}}\n",
            repo.join("policies/manufacturing/smart.rego").display(),
            repo.join("policies/manufacturing/egress.rego").display(),
            dir.join("data").display(),
            dir.join("cloud.db").display()
        ),
    );
    cfg
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let count = |var: &str, default: usize| {
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let n = count(
        "SLUICE_BENCH_MESSAGES",
        if quick { 20_000 } else { 100_000 },
    );
    let spooled = count(
        "SLUICE_BENCH_SPOOLED",
        if quick { 100_000 } else { 1_000_000 },
    );
    let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    else {
        eprintln!("bridge bench: no runtime");
        std::process::exit(1);
    };
    let dir = std::env::temp_dir().join(format!("sluice-bridge-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let plant: SocketAddr = SocketAddr::from(([127, 0, 0, 1], common::free_port_on("127.0.0.1")));
    let cloud: SocketAddr = SocketAddr::from(([127, 0, 0, 2], common::free_port_on("127.0.0.2")));
    let admin: SocketAddr = SocketAddr::from(([127, 0, 0, 1], common::free_port_on("127.0.0.1")));
    println!(
        "export bridge, {n} QoS 1 messages of {PAYLOAD} bytes, plant 127.0.0.1 -> cloud 127.0.0.2"
    );

    let (write, replay) = spool_rates(&dir, n.clamp(1000, 200_000));
    println!("spool write (batches of 1000, WAL):   {write:>10.0} msg/s");
    println!("spool replay (read, mark, delete):    {replay:>10.0} msg/s");

    // mosquitto's own bridge: the plant broker bridges plant/# out to the cloud at QoS 1.
    let mosq_rate = {
        let _cloud = mosquitto(&dir, "cloud", cloud, "");
        let _plant = mosquitto(
            &dir,
            "plant-bridged",
            plant,
            &format!(
                "connection cloud\naddress {cloud}\ntopic plant/# out 1\ncleansession true\nbridge_max_packet_size 0\n"
            ),
        );
        std::thread::sleep(Duration::from_millis(500));
        rt.block_on(throughput(plant, cloud, "mosq", n))
    };

    let cloud_broker = mosquitto(&dir, "cloud", cloud, "");
    let plant_broker = mosquitto(&dir, "plant", plant, "");
    let cfg = sluice_config(&dir, plant, cloud, admin);
    let Ok(child) = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "-c"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .spawn()
    else {
        eprintln!("bridge bench: cannot start sluice");
        std::process::exit(1);
    };
    let sluice = common::Proc(child);
    let pid = sluice.0.id();
    wait_port(admin);
    let up = "sluice_bridge_uplink_up{bridge=\"cloud\"}";
    if !wait_metric(admin, up, 1.0, Duration::from_secs(30)) {
        std::process::exit(1);
    }
    let sluice_rate = rt.block_on(throughput(plant, cloud, "sluice", n));
    println!("mosquitto bridge (baseline):          {mosq_rate:>10.0} msg/s");
    println!(
        "sluice bridge (judged, spooled):      {sluice_rate:>10.0} msg/s  ({:.2}x mosquitto)",
        sluice_rate / mosq_rate
    );
    common::budget_row(
        "export bridge throughput (QoS 1, judged, spooled)",
        &format!("{sluice_rate:.0} msg/s"),
        &format!("mosquitto's bridge {mosq_rate:.0} msg/s"),
        &format!("{:.2}x", sluice_rate / mosq_rate),
        "≥ 1.0x",
        sluice_rate >= mosq_rate,
    );
    println!(
        "sluice RSS, uplink up, spool empty:   {:>10} KiB",
        common::rss_kib(pid)
    );

    // The backlog: cloud down while `spooled` messages come in, then back.
    drop(cloud_broker);
    let spooled_metric = "sluice_bridge_spooled_total{bridge=\"cloud\"}";
    let before = metric(admin, spooled_metric);
    let start = Instant::now();
    let acked = rt.block_on(publish(plant, "backlog", spooled));
    let limit = Duration::from_secs(120 + spooled as u64 / 1000);
    wait_metric(admin, spooled_metric, before + acked as f64, limit);
    let intake = spooled as f64 / start.elapsed().as_secs_f64();
    println!("intake into the spool, uplink down:   {intake:>10.0} msg/s");
    println!(
        "sluice RSS with {spooled} spooled:     {:>10} KiB",
        common::rss_kib(pid)
    );
    // Replay is timed by the remote's acknowledgements (sluice's sent counter).
    let sent = "sluice_bridge_sent_total{bridge=\"cloud\"}";
    let before = metric(admin, sent);
    let _cloud_broker = mosquitto(&dir, "cloud", cloud, "");
    let start = Instant::now();
    wait_metric(admin, sent, before + acked as f64, limit);
    println!(
        "replay of the backlog to the cloud:   {:>10.0} msg/s",
        spooled as f64 / start.elapsed().as_secs_f64()
    );
    drop(sluice);
    drop(plant_broker);
    let _ = std::fs::remove_dir_all(&dir);
}
