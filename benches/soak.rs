//! Soak and slow clients, in one run against one `sluice serve` in front of one mosquitto:
//!
//! 1. Soak: `SOAK_MESSAGES` (default 1,000,000) mixed publishes through sluice from
//!    `SOAK_CLIENTS` (default 200) raw clients — MQTT 3.1.1 and 5, QoS 0/1/2, topic aliases,
//!    retained messages, Wills, one in four denied (`secret/…`) — while a subscriber connected
//!    straight to the broker counts what arrives. Prints denied messages leaked (must be 0),
//!    allowed QoS ≥ 1 messages acknowledged but lost (must be 0), QoS 0 loss, Wills, RSS before
//!    and after, and decisions per second.
//! 2. Slow clients: `SLOW_CLIENTS` (default 10,000) connections that send half an HTTP request
//!    head, then as many that send half an MQTT CONNECT; prints sluice's RSS with them open and
//!    how long a fresh client then takes to be served on each listener.
//!
//! `cargo bench --bench soak`; CI runs it short (`SOAK_MESSAGES=20000 SLOW_CLIENTS=500`).
//! Needs /usr/sbin/mosquitto; raises its own open-file limit (run as root for 10,000).

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::{Proc, free_port, rss_kib, wait_port};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    raise_fd_limit();
    let messages = env_usize("SOAK_MESSAGES", 1_000_000);
    let clients = env_usize("SOAK_CLIENTS", 200).max(1);
    let slow = env_usize("SLOW_CLIENTS", 10_000);
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("soak: runtime: {e}");
            std::process::exit(1);
        }
    };
    let dir = std::env::temp_dir().join(format!("sluice-soak-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let broker_port = free_port();
    let conf = dir.join("mosquitto.conf");
    // Unbounded queues: a loss must be sluice's, not the broker's queue limit.
    let _ = std::fs::write(
        &conf,
        format!(
            "listener {broker_port} 127.0.0.1\nallow_anonymous true\nmax_connections -1\npersistence false\nmax_queued_messages 0\nmax_inflight_messages 0\nlog_dest none\n"
        ),
    );
    let _broker = Proc(spawn(&format!(
        "exec /usr/sbin/mosquitto -c {}",
        conf.display()
    )));
    let broker = SocketAddr::from(([127, 0, 0, 1], broker_port));
    wait_port(broker);
    let (mqtt_port, http_port, admin_port) = (free_port(), free_port(), free_port());
    let cfg = dir.join("sluice.yaml");
    let _ = std::fs::write(
        &cfg,
        format!(
            "site:\n  name: soak\n  local_networks: [127.0.0.1/32]\n  local_domains: [localhost]\npolicy:\n  paths: [{root}/fixtures/mqtt/policy]\n  decision: data.mqtt_test\nhttp: {{listen: 127.0.0.1:{http_port}}}\nadmin: {{listen: 127.0.0.1:{admin_port}}}\nlog: {{level: error}}\nmqtt:\n  - listen: 127.0.0.1:{mqtt_port}\n    upstream: 127.0.0.1:{broker_port}\n",
            root = env!("CARGO_MANIFEST_DIR")
        ),
    );
    let sluice = Proc(spawn(&format!(
        "exec {} serve -c {}",
        env!("CARGO_BIN_EXE_sluice"),
        cfg.display()
    )));
    let pid = sluice.0.id();
    let mqtt = SocketAddr::from(([127, 0, 0, 1], mqtt_port));
    let http = SocketAddr::from(([127, 0, 0, 1], http_port));
    let admin = SocketAddr::from(([127, 0, 0, 1], admin_port));
    wait_port(mqtt);
    wait_port(http);

    let ok = rt.block_on(soak(mqtt, broker, admin, pid, messages, clients));
    rt.block_on(slow_clients(http, mqtt, pid, slow));
    if !ok {
        std::process::exit(1);
    }
}

/// Message keys: client index in the high half, sequence number in the low.
fn key(client: usize, seq: u32) -> u64 {
    ((client as u64) << 32) | u64::from(seq)
}

#[derive(Default)]
struct Sent {
    /// Allowed QoS ≥ 1 publishes the broker (through sluice) acknowledged.
    acked: Mutex<Vec<u64>>,
    allowed_qos0: AtomicU64,
    denied: AtomicU64,
    wills_expected: AtomicU64,
}

#[derive(Default)]
struct Arrived {
    keys: Mutex<HashSet<u64>>,
    denied: AtomicU64,
    wills: AtomicU64,
    total: AtomicU64,
}

async fn soak(
    mqtt: SocketAddr,
    broker: SocketAddr,
    admin: SocketAddr,
    pid: u32,
    messages: usize,
    clients: usize,
) -> bool {
    let arrived = Arc::new(Arrived::default());
    let subscriber = tokio::spawn(subscribe(broker, arrived.clone()));
    wait_subscribed(&arrived).await;
    let sent = Arc::new(Sent::default());
    let per_client = messages.div_ceil(clients);
    let rss_before = rss_kib(pid);
    let decisions_before = decisions(admin).await;
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|i| tokio::spawn(publisher(mqtt, i, per_client, sent.clone())))
        .collect();
    let mut failed = 0;
    for t in tasks {
        if !matches!(t.await, Ok(Ok(()))) {
            failed += 1;
        }
    }
    let elapsed = start.elapsed();
    let decisions_after = decisions(admin).await;
    // Let the subscriber drain: until nothing new arrives for a second.
    let mut last = u64::MAX;
    while arrived.total.load(Ordering::Relaxed) != last {
        last = arrived.total.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    subscriber.abort();
    let rss_after = rss_kib(pid);

    let got = arrived.keys.lock().map(|k| k.clone()).unwrap_or_default();
    let acked = sent.acked.lock().map(|a| a.clone()).unwrap_or_default();
    let lost = acked.iter().filter(|k| !got.contains(k)).count();
    let qos0_sent = sent.allowed_qos0.load(Ordering::Relaxed);
    let qos0_got = (got.len() as u64).saturating_sub((acked.len() - lost) as u64);
    let leaked = arrived.denied.load(Ordering::Relaxed);
    let sent_total = (per_client * clients) as f64;
    println!(
        "soak: {} messages from {clients} clients ({} failed) in {:.1} s = {:.0} msg/s; {:.0} decisions/s",
        per_client * clients,
        failed,
        elapsed.as_secs_f64(),
        sent_total / elapsed.as_secs_f64(),
        (decisions_after - decisions_before) / elapsed.as_secs_f64()
    );
    println!(
        "soak: denied sent {}, leaked {leaked} (must be 0: {})",
        sent.denied.load(Ordering::Relaxed),
        verdict(leaked == 0)
    );
    println!(
        "soak: allowed QoS>=1 acknowledged {}, lost {lost} (must be 0: {})",
        acked.len(),
        verdict(lost == 0)
    );
    println!(
        "soak: allowed QoS 0 sent {qos0_sent}, arrived {qos0_got} ({:.3} % lost)",
        100.0 * qos0_sent.saturating_sub(qos0_got) as f64 / qos0_sent.max(1) as f64
    );
    println!(
        "soak: Wills expected {}, arrived {}",
        sent.wills_expected.load(Ordering::Relaxed),
        arrived.wills.load(Ordering::Relaxed)
    );
    println!(
        "soak: sluice RSS before {:.1} MiB, after {:.1} MiB",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0
    );
    leaked == 0 && lost == 0 && failed == 0
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

/// A subscriber on the broker itself (rumqttc, MQTT 3.1.1, QoS 2 on `#`).
async fn subscribe(broker: SocketAddr, arrived: Arc<Arrived>) {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let mut opts = MqttOptions::new("soak-counter", broker.ip().to_string(), broker.port());
    opts.set_max_packet_size(1 << 20, 1 << 20);
    opts.set_keep_alive(Duration::from_secs(60));
    let (client, mut events) = AsyncClient::new(opts, 1000);
    let _ = client.subscribe("#", QoS::ExactlyOnce).await;
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                arrived.total.store(1, Ordering::Relaxed);
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                arrived.total.fetch_add(1, Ordering::Relaxed);
                if p.topic.starts_with("secret/") {
                    arrived.denied.fetch_add(1, Ordering::Relaxed);
                } else if p.topic.starts_with("plant/will/") {
                    arrived.wills.fetch_add(1, Ordering::Relaxed);
                } else if let Ok(b) = <[u8; 8]>::try_from(&p.payload[..]) {
                    if let Ok(mut k) = arrived.keys.lock() {
                        k.insert(u64::from_be_bytes(b));
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("soak: subscriber: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn wait_subscribed(arrived: &Arrived) {
    let start = Instant::now();
    while arrived.total.load(Ordering::Relaxed) == 0 {
        if start.elapsed() > Duration::from_secs(30) {
            panic!("the soak subscriber never got its SUBACK");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    arrived.total.store(0, Ordering::Relaxed);
}

/// One client: `n` publishes, one in flight at a time; every fourth is denied; QoS cycles
/// 0, 1, 2; MQTT 5 clients (odd indexes) reuse a topic alias; every 50th allowed one is
/// retained. Every tenth client vanishes at the end (its Will fires), the rest disconnect.
async fn publisher(addr: SocketAddr, i: usize, n: usize, sent: Arc<Sent>) -> std::io::Result<()> {
    let v5 = i % 2 == 1;
    let mut s = TcpStream::connect(addr).await?;
    let _ = s.set_nodelay(true);
    s.write_all(&connect(
        v5,
        &format!("soak-{i}"),
        &format!("plant/will/{i}"),
    ))
    .await?;
    let ack = read_packet(&mut s).await?;
    if ack.first() != Some(&0x20) || ack.get(3) != Some(&0) {
        return Err(std::io::Error::other(format!("CONNACK {ack:?}")));
    }
    let allowed_topic = format!("plant/soak/{i}");
    let denied_topic = format!("secret/soak/{i}");
    let mut acked = Vec::new();
    for seq in 0..n as u32 {
        let denied = seq % 4 == 3;
        let qos = (seq % 3) as u8;
        let retain = !denied && seq % 50 == 0;
        let topic = if denied {
            &denied_topic
        } else {
            &allowed_topic
        };
        // MQTT 5: alias 1 (allowed) or 2 (denied) set on first use, then the topic is empty.
        let alias = v5.then_some(if denied { 2u16 } else { 1 });
        let first_use = seq < 4;
        let id = (seq % 60_000 + 1) as u16;
        let payload = key(i, seq).to_be_bytes();
        s.write_all(&publish(
            v5, topic, alias, first_use, qos, retain, id, &payload,
        ))
        .await?;
        if qos > 0 {
            let ack = read_packet(&mut s).await?;
            let refused = v5 && ack.get(4).is_some_and(|c| *c >= 0x80);
            if qos == 2 && !refused {
                s.write_all(&[0x62, 2, (id >> 8) as u8, id as u8]).await?;
                read_packet(&mut s).await?;
            }
            if !denied {
                acked.push(key(i, seq));
            }
        } else if !denied {
            sent.allowed_qos0.fetch_add(1, Ordering::Relaxed);
        }
        if denied {
            sent.denied.fetch_add(1, Ordering::Relaxed);
        }
    }
    if let Ok(mut a) = sent.acked.lock() {
        a.extend(acked);
    }
    if i % 10 == 0 {
        sent.wills_expected.fetch_add(1, Ordering::Relaxed);
        drop(s);
    } else {
        let _ = s.write_all(&[0xE0, 0]).await;
    }
    Ok(())
}

/// CONNECT, clean start, keep-alive 0, with a QoS 0 Will.
fn connect(v5: bool, id: &str, will: &str) -> Vec<u8> {
    let mut body = vec![
        0,
        4,
        b'M',
        b'Q',
        b'T',
        b'T',
        if v5 { 5 } else { 4 },
        0x06,
        0,
        0,
    ];
    if v5 {
        body.push(0);
    }
    push_str(&mut body, id.as_bytes());
    if v5 {
        body.push(0);
    }
    push_str(&mut body, will.as_bytes());
    push_str(&mut body, b"gone");
    frame(0x10, &body)
}

#[allow(clippy::too_many_arguments)]
fn publish(
    v5: bool,
    topic: &str,
    alias: Option<u16>,
    first_use: bool,
    qos: u8,
    retain: bool,
    id: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut body = Vec::new();
    let named = alias.is_none() || first_use;
    push_str(&mut body, if named { topic.as_bytes() } else { b"" });
    if qos > 0 {
        body.extend_from_slice(&id.to_be_bytes());
    }
    if v5 {
        match alias {
            Some(a) => body.extend_from_slice(&[3, 0x23, (a >> 8) as u8, a as u8]),
            None => body.push(0),
        }
    }
    body.extend_from_slice(payload);
    frame(0x30 | (qos << 1) | u8::from(retain), &body)
}

fn push_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    sluice::proxy::mqtt::encode::encode_frame(first, body)
}

/// One whole packet: the fixed header byte, the remaining length, the body.
async fn read_packet(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut out = vec![s.read_u8().await?];
    let mut len = 0usize;
    for shift in (0..4).map(|i| i * 7) {
        let b = s.read_u8().await?;
        out.push(b);
        len |= usize::from(b & 0x7F) << shift;
        if b & 0x80 == 0 {
            break;
        }
    }
    let start = out.len();
    out.resize(start + len, 0);
    s.read_exact(&mut out[start..]).await?;
    Ok(out)
}

/// `SLOW_CLIENTS` half-sent HTTP heads, then as many half-sent MQTT CONNECTs; RSS and a fresh
/// client's wait on each listener with them open.
async fn slow_clients(http: SocketAddr, mqtt: SocketAddr, pid: u32, n: usize) {
    if n == 0 {
        return;
    }
    let upstream = http_upstream().await;
    for (name, addr, half) in [
        (
            "HTTP headers",
            http,
            &b"GET http://127.0.0.1/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"[..],
        ),
        ("MQTT CONNECT", mqtt, &[0x10, 0x20, 0, 4, b'M', b'Q'][..]),
    ] {
        // Each phase from its own start: the allocator keeps what the last phase freed.
        let rss_idle = rss_kib(pid);
        let mut held = Vec::with_capacity(n);
        for _ in 0..n {
            let Ok(mut s) = TcpStream::connect(addr).await else {
                break;
            };
            let _ = s.write_all(half).await;
            held.push(s);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let rss = rss_kib(pid);
        let start = Instant::now();
        let served = if addr == http {
            fresh_http(http, upstream).await
        } else {
            fresh_mqtt(mqtt).await
        };
        let waited = start.elapsed();
        println!(
            "slow clients: {} on {name}: sluice RSS {:.1} MiB (+{:.0} bytes each); a fresh client {} in {:.1} ms",
            held.len(),
            rss as f64 / 1024.0,
            (rss.saturating_sub(rss_idle) * 1024) as f64 / held.len().max(1) as f64,
            if served { "served" } else { "NOT served" },
            waited.as_secs_f64() * 1000.0
        );
        drop(held);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn fresh_http(proxy: SocketAddr, upstream: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect(proxy).await else {
        return false;
    };
    let req = format!(
        "GET http://{upstream}/fresh HTTP/1.1\r\nHost: {upstream}\r\nConnection: close\r\n\r\n"
    );
    if s.write_all(req.as_bytes()).await.is_err() {
        return false;
    }
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut out)).await;
    out.starts_with(b"HTTP/1.1 200")
}

async fn fresh_mqtt(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect(addr).await else {
        return false;
    };
    if s.write_all(&connect(false, "fresh", "plant/will/fresh"))
        .await
        .is_err()
    {
        return false;
    }
    let ack = tokio::time::timeout(Duration::from_secs(30), read_packet(&mut s)).await;
    let ok = matches!(ack, Ok(Ok(a)) if a.get(3) == Some(&0));
    let _ = s.write_all(&[0xE0, 0]).await;
    ok
}

/// An HTTP/1.1 upstream answering 200 to anything.
async fn http_upstream() -> SocketAddr {
    let Ok(l) = tokio::net::TcpListener::bind("127.0.0.1:0").await else {
        panic!("bind an upstream");
    };
    let addr = l.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    addr
}

async fn decisions(admin: SocketAddr) -> f64 {
    let Ok(mut s) = TcpStream::connect(admin).await else {
        return 0.0;
    };
    let _ = s
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    let mut text = String::new();
    let _ = s.read_to_string(&mut text).await;
    text.lines()
        .filter(|l| l.starts_with("sluice_decisions_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn spawn(cmd: &str) -> Child {
    Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd}: {e}"))
}

/// Raises this process's open-file limit (children inherit it): to the hard limit, and past
/// it to 65,536 where allowed (root).
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return;
        }
        let want = lim.rlim_max.max(65_536);
        let raised = libc::rlimit {
            rlim_cur: want,
            rlim_max: want,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}
