//! MQTT load through sluice against the same mosquitto directly, in one run:
//! QoS 0 and QoS 1 publishes per second and publish-to-receive latency (P50/P99/P999) with 1
//! and 100 publishers, then sluice's resident memory idle and with 10,000 idle MQTT clients.
//!
//! `cargo bench --bench mqtt_load` (needs /usr/sbin/mosquitto). Raises its own open-file limit
//! (re-executing itself under `ulimit -n 65536`); run as root or with a hard limit that allows it.
//!
//! Publishers and the subscriber are raw sockets (no client library in the measurement): each
//! publisher keeps a fixed window of messages in flight, counted from send to arrival at a
//! subscriber connected directly to the broker, so throughput and latency come from the same
//! closed loop. The subscriber asks for QoS 0, so the QoS measured is the publishing leg's —
//! the leg sluice sits on.

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use sluice::proxy::mqtt::codec::{self, Version};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use common::{Proc, free_port, rss_kib, wait_port};

const RUN: Duration = Duration::from_secs(2);
const PAYLOAD: usize = 64;
/// 10,000 needs 20,000+ descriptors in sluice (client and upstream side); where the hard limit
/// is 20,000 (containers), the run uses what fits and reports the per-connection cost.
const IDLE_CLIENTS: usize = 10_000;

fn main() {
    raise_fd_limit();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mqtt_load: runtime: {e}");
            std::process::exit(1);
        }
    };
    let dir = std::env::temp_dir().join(format!("sluice-mqtt-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let broker_port = free_port();
    let conf = dir.join("mosquitto.conf");
    let _ = std::fs::write(
        &conf,
        format!(
            "listener {broker_port} 127.0.0.1\nallow_anonymous true\nmax_connections -1\npersistence false\nset_tcp_nodelay true\nlog_dest none\n"
        ),
    );
    let broker = Proc(spawn_limited(&format!(
        "exec /usr/sbin/mosquitto -c {}",
        conf.display()
    )));
    let broker_addr = SocketAddr::from(([127, 0, 0, 1], broker_port));
    wait_port(broker_addr);

    let sluice_port = free_port();
    let admin_port = free_port();
    let cfg = dir.join("sluice.yaml");
    let _ = std::fs::write(
        &cfg,
        format!(
            "{}http: null\nadmin: {{listen: 127.0.0.1:{admin_port}}}\nlog: {{level: warn}}\nmqtt:\n  - listen: 127.0.0.1:{sluice_port}\n    upstream: 127.0.0.1:{broker_port}\n",
            std::env::var("SLUICE_CONFIG_PREFIX").unwrap_or_default()
        ),
    );
    let sluice = Proc(spawn_limited(&format!(
        "exec env {} {} serve -c {}",
        std::env::var("SLUICE_ENV").unwrap_or_default(),
        env!("CARGO_BIN_EXE_sluice"),
        cfg.display()
    )));
    let sluice_addr = SocketAddr::from(([127, 0, 0, 1], sluice_port));
    wait_port(sluice_addr);
    let idle_rss = rss_kib(sluice.0.id());

    println!(
        "mqtt_load: mosquitto on loopback, {PAYLOAD}-byte payloads, {} s per run (best of 2), closed loop",
        RUN.as_secs()
    );
    println!(
        "{:<24} {:<7} {:>10} {:>9} {:>9} {:>9}   vs direct",
        "scenario", "path", "msgs/s", "p50", "p99", "p999"
    );
    let mut all_met = true;
    let mut all_latency_met = true;
    // `MQTT_LOAD=rss` runs only the memory part.
    let rss_only = std::env::var("MQTT_LOAD").is_ok_and(|v| v == "rss");
    for qos in [0u8, 1].into_iter().filter(|_| !rss_only) {
        for (publishers, window) in [(1usize, 64usize), (100, 8)] {
            let name = format!(
                "qos{qos} {publishers} publisher{}",
                if publishers > 1 { "s" } else { "" }
            );
            let mut direct = Stats::default();
            let mut through = Stats::default();
            for _ in 0..2 {
                direct = direct.best(rt.block_on(run(
                    broker_addr,
                    broker_addr,
                    qos,
                    publishers,
                    window,
                    None,
                )));
                through = through.best(rt.block_on(run(
                    sluice_addr,
                    broker_addr,
                    qos,
                    publishers,
                    window,
                    None,
                )));
            }
            let ratio = through.rate / direct.rate.max(1.0);
            let met = ratio >= 0.9;
            all_met &= met;
            common::budget_row(
                &format!("MQTT publishes/s, {name}"),
                &format!("{:.0}/s", through.rate),
                &format!("mosquitto alone {:.0}/s", direct.rate),
                &format!("{ratio:.2}x"),
                "≥ 0.9x",
                met,
            );
            println!("{:<24} {:<7} {}", name, "direct", direct.line());
            println!(
                "{:<24} {:<7} {}   {:.2}x (budget >= 0.90: {})",
                name,
                "sluice",
                through.line(),
                ratio,
                if met { "met" } else { "MISSED" }
            );
        }
    }

    // Added latency at a steady 1,000 msg/s (open loop), the budget's own load: the median of
    // three alternating runs each way, so a noisy moment does not pick the winner.
    for qos in [0u8, 1].into_iter().filter(|_| !rss_only) {
        let mut direct = Vec::new();
        let mut through = Vec::new();
        for _ in 0..3 {
            let pace = Some(Duration::from_millis(1));
            direct.push(rt.block_on(run(broker_addr, broker_addr, qos, 1, 1, pace)));
            through.push(rt.block_on(run(sluice_addr, broker_addr, qos, 1, 1, pace)));
        }
        let median = |v: &mut Vec<Stats>| {
            v.sort_by_key(|s| s.p99);
            v[v.len() / 2].clone()
        };
        let (d, t) = (median(&mut direct), median(&mut through));
        let added = t.p99.saturating_sub(d.p99);
        let met = added <= Duration::from_micros(300);
        all_latency_met &= met;
        let name = format!("qos{qos} 1k msg/s paced");
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        common::budget_row(
            &format!("MQTT QoS {qos} added latency, P99 at 1k msg/s"),
            &format!("+{:.0} µs (P99 {:.0} µs)", us(added), us(t.p99)),
            &format!("mosquitto alone P99 {:.0} µs", us(d.p99)),
            "—",
            "≤ +300 µs",
            met,
        );
        println!("{:<24} {:<7} {}", name, "direct", d.line());
        println!(
            "{:<24} {:<7} {}   P99 +{:.0}µs over direct (budget <= 300µs: {})",
            name,
            "sluice",
            t.line(),
            added.as_secs_f64() * 1e6,
            if met { "met" } else { "MISSED" }
        );
    }

    // sluice holds two descriptors per client (client and upstream side).
    let clients = IDLE_CLIENTS.min((fd_hard_limit().saturating_sub(100) / 2) as usize);
    let (held, loaded_rss) = rt.block_on(idle_clients(sluice_addr, sluice.0.id(), clients));
    let mib = |k: u64| k as f64 / 1024.0;
    let per_conn = (loaded_rss.saturating_sub(idle_rss) * 1024) as f64 / held.max(1) as f64;
    let at_10k = idle_rss as f64 * 1024.0 + per_conn * IDLE_CLIENTS as f64;
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!(
        "rss: sluice idle {:.1} MiB (budget <= 16 MiB: {}); with {held} idle MQTT clients {:.1} MiB = {:.0} bytes per connection",
        mib(idle_rss),
        verdict(idle_rss <= 16 * 1024),
        mib(loaded_rss),
        per_conn,
    );
    if !rss_only {
        common::budget_row(
            "resident memory, idle",
            &format!("{:.1} MiB", mib(idle_rss)),
            "—",
            "—",
            "≤ 16 MiB",
            idle_rss <= 16 * 1024,
        );
    }
    common::budget_row(
        &format!("resident memory, {IDLE_CLIENTS} idle MQTT connections"),
        &format!("{:.1} MiB ({per_conn:.0} B each)", at_10k / 1024.0 / 1024.0),
        "—",
        "—",
        "≤ 40 MiB",
        at_10k <= 40.0 * 1024.0 * 1024.0,
    );
    println!(
        "rss at {IDLE_CLIENTS} idle clients: {:.1} MiB{} (budget <= 40 MiB: {})",
        at_10k / 1024.0 / 1024.0,
        if held < IDLE_CLIENTS {
            " (extrapolated: the open-file hard limit allows fewer)"
        } else {
            ""
        },
        verdict(at_10k <= 40.0 * 1024.0 * 1024.0),
    );
    println!(
        "throughput budget (>= 90% of direct): {}",
        if all_met {
            "met in every scenario"
        } else {
            "missed in at least one scenario"
        }
    );
    println!(
        "added latency budget (P99 <= 300µs over direct at 1k msg/s): {}",
        if all_latency_met { "met" } else { "missed" }
    );
    drop(sluice);
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
}

#[derive(Default, Clone)]
struct Stats {
    rate: f64,
    p50: Duration,
    p99: Duration,
    p999: Duration,
}

impl Stats {
    fn best(self, other: Stats) -> Stats {
        if other.rate > self.rate { other } else { self }
    }
    fn line(&self) -> String {
        let us = |d: Duration| format!("{:.0}µs", d.as_secs_f64() * 1e6);
        format!(
            "{:>10.0} {:>9} {:>9} {:>9}",
            self.rate,
            us(self.p50),
            us(self.p99),
            us(self.p999)
        )
    }
}

/// One closed-loop run: `publishers` raw clients publish to `target`, one raw subscriber on
/// `broker` receives; each publisher has `window` messages in flight at most.
async fn run(
    target: SocketAddr,
    broker: SocketAddr,
    qos: u8,
    publishers: usize,
    window: usize,
    pace: Option<Duration>,
) -> Stats {
    let base = Instant::now();
    let tag = AtomicU64::new(0);
    let run_id = format!(
        "{}-{}",
        std::process::id(),
        base.elapsed().as_nanos() ^ tag.fetch_add(1, Ordering::Relaxed) as u128
    );
    let prefix = format!("bench/{}", run_id.len() + publishers + qos as usize);
    let credits: Arc<Vec<Semaphore>> =
        Arc::new((0..publishers).map(|_| Semaphore::new(window)).collect());
    let stop = Arc::new(AtomicBool::new(false));

    // Subscriber, directly on the broker.
    let mut sub = connect(broker, &format!("sub-{run_id}")).await;
    let filter = format!("{prefix}/#");
    let mut body = vec![0, 1];
    push_str(&mut body, &filter);
    body.push(0);
    let _ = sub.write_all(&frame(0x82, &body)).await;
    let mut suback = [0u8; 5];
    let _ = sub.read_exact(&mut suback).await;

    let (lat_tx, lat_rx) = std::sync::mpsc::channel::<Vec<u64>>();
    let measuring = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let sub_task = {
        let (credits, stop, measuring, received) = (
            Arc::clone(&credits),
            Arc::clone(&stop),
            Arc::clone(&measuring),
            Arc::clone(&received),
        );
        tokio::spawn(async move {
            let mut lat = Vec::with_capacity(1 << 20);
            let mut buf = BytesMut::with_capacity(256 * 1024);
            while !stop.load(Ordering::Relaxed) {
                let read =
                    tokio::time::timeout(Duration::from_millis(100), sub.read_buf(&mut buf)).await;
                match read {
                    Ok(Ok(0)) | Ok(Err(_)) => break,
                    Ok(Ok(_)) => {}
                    Err(_) => continue,
                }
                while let Ok(Some(f)) = codec::split_frame(&mut buf, 1 << 20) {
                    let Ok(p) = codec::inspect_publish(&f, Version::V311) else {
                        continue;
                    };
                    let payload = &f[p.topic_range.end..];
                    if payload.len() < 10 {
                        continue;
                    }
                    let mut ts = [0u8; 8];
                    ts.copy_from_slice(&payload[..8]);
                    let sent = u64::from_be_bytes(ts);
                    let who = usize::from(u16::from_be_bytes([payload[8], payload[9]]));
                    if measuring.load(Ordering::Relaxed) {
                        lat.push((base.elapsed().as_nanos() as u64).saturating_sub(sent));
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                    if let Some(c) = credits.get(who) {
                        c.add_permits(1);
                    }
                }
            }
            let _ = lat_tx.send(lat);
        })
    };

    // Publishers, to the target (sluice or the broker itself).
    let mut tasks = Vec::new();
    for who in 0..publishers {
        let mut conn = connect(target, &format!("pub-{run_id}-{who}")).await;
        let topic = format!("{prefix}/{who}");
        let (credits, stop) = (Arc::clone(&credits), Arc::clone(&stop));
        tasks.push(tokio::spawn(async move {
            let (mut r, mut w) = conn.split();
            let drain = async {
                // PUBACKs (QoS 1) are read and dropped; the window is the subscriber's.
                let mut sink = vec![0u8; 64 * 1024];
                while let Ok(n) = r.read(&mut sink).await {
                    if n == 0 {
                        break;
                    }
                }
            };
            let send = async {
                let mut id: u16 = 0;
                let mut out = Vec::with_capacity(4096);
                let mut ticker = pace.map(tokio::time::interval);
                while !stop.load(Ordering::Relaxed) {
                    // Open loop: one message per tick, whatever is in flight.
                    let n = if let Some(t) = ticker.as_mut() {
                        t.tick().await;
                        1
                    } else {
                        let Ok(p) = credits[who].acquire().await else {
                            break;
                        };
                        p.forget();
                        // Send as many as the window allows in one write.
                        let mut n = 1 + credits[who].available_permits();
                        if let Ok(more) = credits[who].try_acquire_many(n as u32 - 1) {
                            more.forget();
                        } else {
                            n = 1;
                        }
                        n
                    };
                    out.clear();
                    for _ in 0..n {
                        let mut body = Vec::with_capacity(PAYLOAD + topic.len() + 4);
                        push_str(&mut body, &topic);
                        if qos == 1 {
                            id = id.wrapping_add(1).max(1);
                            body.extend_from_slice(&id.to_be_bytes());
                        }
                        body.extend_from_slice(&(base.elapsed().as_nanos() as u64).to_be_bytes());
                        body.extend_from_slice(&(who as u16).to_be_bytes());
                        body.resize(body.len() + PAYLOAD - 10, 0x5a);
                        out.extend_from_slice(&frame(0x30 | qos << 1, &body));
                    }
                    if w.write_all(&out).await.is_err() {
                        break;
                    }
                }
            };
            tokio::select! { _ = drain => {}, _ = send => {} }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await; // warm-up
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(RUN).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let count = received.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    for c in credits.iter() {
        c.close();
    }
    for t in tasks {
        let _ = t.await;
    }
    let _ = sub_task.await;
    let mut lat = lat_rx.recv().unwrap_or_default();
    lat.sort_unstable();
    let pct = |p: f64| {
        if lat.is_empty() {
            Duration::ZERO
        } else {
            Duration::from_nanos(lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)])
        }
    };
    Stats {
        rate: count as f64 / elapsed.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
        p999: pct(0.999),
    }
}

/// Opens `IDLE_CLIENTS` MQTT connections through sluice and reports sluice's RSS with them open.
async fn idle_clients(sluice: SocketAddr, pid: u32, clients: usize) -> (usize, u64) {
    let opened = Arc::new(Semaphore::new(200));
    let mut tasks = Vec::with_capacity(clients);
    for i in 0..clients {
        let Ok(permit) = Arc::clone(&opened).acquire_owned().await else {
            break;
        };
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let mut s = TcpStream::connect(sluice).await.ok()?;
            let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 0];
            push_str(&mut body, &format!("idle-{i}"));
            s.write_all(&frame(0x10, &body)).await.ok()?;
            let mut connack = [0u8; 4];
            tokio::time::timeout(Duration::from_secs(30), s.read_exact(&mut connack))
                .await
                .ok()?
                .ok()?;
            (connack[3] == 0).then_some(s)
        }));
    }
    let mut held = Vec::with_capacity(IDLE_CLIENTS);
    for t in tasks {
        if let Ok(Some(s)) = t.await {
            held.push(s);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss = rss_kib(pid);
    (held.len(), rss)
}

async fn connect(addr: SocketAddr, id: &str) -> TcpStream {
    let Ok(mut s) = TcpStream::connect(addr).await else {
        panic!("cannot connect to {addr}");
    };
    let _ = s.set_nodelay(true);
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 0];
    push_str(&mut body, id);
    let _ = s.write_all(&frame(0x10, &body)).await;
    let mut connack = [0u8; 4];
    if s.read_exact(&mut connack).await.is_err() || connack[3] != 0 {
        panic!("{addr} refused CONNECT: {connack:?}");
    }
    s
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    sluice::proxy::mqtt::encode::encode_frame(first, body)
}

/// Starts a shell command with a raised open-file limit (sluice and mosquitto hold 10k+ sockets).
fn spawn_limited(cmd: &str) -> Child {
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 65536 2>/dev/null || ulimit -n $(ulimit -Hn); {cmd}"
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd}: {e}"))
}

fn fd_hard_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(4))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(1024)
}

/// Re-executes the benchmark under `ulimit -n 65536` when the soft limit is too low for the
/// idle-connection test.
fn raise_fd_limit() {
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0);
    if soft >= fd_hard_limit().min(2 * IDLE_CLIENTS as u64 + 100)
        || std::env::var_os("SLUICE_BENCH_REEXEC").is_some()
    {
        return;
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let status = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 65536 2>/dev/null || ulimit -n $(ulimit -Hn); exec \"$0\" \"$@\"")
        .arg(&exe)
        .args(&args)
        .env("SLUICE_BENCH_REEXEC", "1")
        .status();
    match status {
        Ok(s) => std::process::exit(s.code().unwrap_or(1)),
        Err(e) => eprintln!("mqtt_load: cannot raise the open-file limit ({e}); continuing"),
    }
}
