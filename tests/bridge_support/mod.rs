//! Helpers of the export bridge tests: a plant and a cloud mosquitto on free loopback ports
//! (the cloud on 127.0.0.2, outside the test site `127.0.0.1/32`), the real `sluice serve` with
//! one bridge between them, an allowlist policy written to the test's directory, a rumqttc
//! publisher and a cloud subscriber with a persistent session that records every payload.
//!
//! Needs /usr/sbin/mosquitto (Debian: mosquitto).
#![allow(dead_code)]

pub mod pki;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

/// Generous: tests share two cores with other test binaries.
pub const WAIT: Duration = Duration::from_secs(60);

/// A scratch directory removed on drop.
pub struct Dir(pub PathBuf);

impl Dir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "sluice-bridge-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
        Self(p)
    }
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        if let Some(d) = p.parent() {
            let _ = std::fs::create_dir_all(d);
        }
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        p
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn free_port(ip: &str) -> u16 {
    let l = TcpListener::bind((ip, 0)).unwrap_or_else(|e| panic!("bind {ip}:0: {e}"));
    l.local_addr().map(|a| a.port()).unwrap_or(0)
}

pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Polls `cond` until it holds; panics with `what()` after [`WAIT`].
pub fn wait_until(mut cond: impl FnMut() -> bool, what: impl Fn() -> String) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < WAIT, "timed out: {}", what());
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A mosquitto broker that can be stopped and started again on the same address.
pub struct Broker {
    pub addr: SocketAddr,
    child: Option<Child>,
    conf: PathBuf,
    extra: String,
    dir: Dir,
}

/// The only user a gated broker lets in before [`Broker::open_gate`].
pub const WATCHER: (&str, &str) = ("watcher", "watcher-secret");

impl Broker {
    /// Configured (not started) on `ip`; queues without limit, keeps sessions across restarts.
    pub fn new(ip: &str, extra: &str) -> Self {
        let dir = Dir::new("mosquitto");
        let port = free_port(ip);
        let addr = format!("{ip}:{port}")
            .parse()
            .unwrap_or_else(|e| panic!("{ip}:{port}: {e}"));
        let conf = dir.path("mosquitto.conf");
        let b = Self {
            addr,
            child: None,
            conf,
            extra: extra.to_string(),
            dir,
        };
        b.write_conf(true);
        b
    }

    fn write_conf(&self, anonymous: bool) {
        let (ip, port) = (self.addr.ip(), self.addr.port());
        let auth = if anonymous {
            "allow_anonymous true\n".to_string()
        } else {
            let pw = self.dir.path("passwd");
            let ok = Command::new("mosquitto_passwd")
                .args(["-b", "-c"])
                .arg(&pw)
                .args([WATCHER.0, WATCHER.1])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "mosquitto_passwd failed (apt-get install mosquitto)");
            format!("allow_anonymous false\npassword_file {}\n", pw.display())
        };
        self.dir.file(
            "mosquitto.conf",
            &format!(
                "listener {port} {ip}\n{auth}max_queued_messages 0\nmax_inflight_messages 100\npersistence true\npersistence_location {}/\nautosave_interval 1\n{}\n",
                self.dir.0.display(),
                self.extra
            ),
        );
    }

    /// Adds a user to a gated broker's password file (before it starts, or SIGHUP it).
    pub fn add_user(&self, user: &str, password: &str) {
        let ok = Command::new("mosquitto_passwd")
            .arg("-b")
            .arg(self.dir.path("passwd"))
            .args([user, password])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "mosquitto_passwd failed (apt-get install mosquitto)");
    }

    /// Configured (not started) on `addr` exactly, e.g. where a fake broker listened.
    pub fn on(addr: SocketAddr, extra: &str) -> Self {
        let dir = Dir::new("mosquitto");
        let b = Self {
            addr,
            child: None,
            conf: dir.path("mosquitto.conf"),
            extra: extra.to_string(),
            dir,
        };
        b.write_conf(true);
        b
    }

    /// Refuses every CONNECT but the watcher's (until [`Broker::open_gate`]).
    pub fn gate(&self) {
        self.write_conf(false);
    }

    /// Lets anonymous clients (sluice) in again: config rewritten, SIGHUP.
    pub fn open_gate(&self) {
        self.write_conf(true);
        if let Some(c) = &self.child {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(c.id() as i32, libc::SIGHUP) };
        }
    }

    pub fn started(ip: &str, extra: &str) -> Self {
        let mut b = Self::new(ip, extra);
        b.start();
        b
    }

    pub fn start(&mut self) {
        let child = Command::new("/usr/sbin/mosquitto")
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run /usr/sbin/mosquitto: {e}"));
        self.child = Some(child);
        let addr = self.addr;
        wait_until(
            || TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok(),
            || format!("mosquitto on {addr}"),
        );
    }

    /// SIGTERM, so that mosquitto saves its sessions.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The allowlist policy: the shipped egress package with data that lets `topics` go to `host`.
pub fn write_policy(dir: &Dir, host: &str, topics: &[&str]) -> PathBuf {
    let data = serde_json::json!({"export_allowlist": [{
        "name": "bridge-test", "host": host, "protocols": ["mqtt"], "topics": topics,
    }]});
    dir.file("policy-data/manufacturing/data.json", &data.to_string());
    dir.path("policy-data")
}

/// A sluice config with one bridge `cloud`; `bridge_extra` is indented under it, `top` goes
/// at the top level.
pub fn bridge_config(
    dir: &Dir,
    plant: &Broker,
    remote: &str,
    bridge_extra: &str,
    top: &str,
) -> (String, SocketAddr) {
    let data = dir.path("policy-data");
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port("127.0.0.1"))
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut s = format!(
        "http: null\nadmin: {{listen: {admin}}}\nsite: {{name: plant-042, local_networks: [127.0.0.1/32], local_domains: [localhost]}}\npolicy:\n  paths: [{}, {}, {}]\n  decision: data.manufacturing.egress\n{top}\nbridges:\n  - name: cloud\n    local: {{broker: {}}}\n    remote: {{broker: {remote}, ack_timeout: 3s}}\n    topics: [\"plant/#\"]\n",
        repo("policies/manufacturing/smart.rego").display(),
        repo("policies/manufacturing/egress.rego").display(),
        data.display(),
        plant.addr,
    );
    for line in bridge_extra.lines().filter(|l| !l.trim().is_empty()) {
        s.push_str(&format!("    {line}\n"));
    }
    (s, admin)
}

/// A sluice config with the given bridges (each a YAML mapping, indented as a list item by
/// this function) and `top` at the top level.
pub fn bridges_config(dir: &Dir, bridges: &[String], top: &str) -> (String, SocketAddr) {
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port("127.0.0.1"))
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut s = format!(
        "http: null\nadmin: {{listen: {admin}}}\nsite: {{name: plant-042, local_networks: [127.0.0.1/32], local_domains: [localhost]}}\npolicy:\n  paths: [{}, {}, {}]\n  decision: data.manufacturing.egress\n{top}\nbridges:\n",
        repo("policies/manufacturing/smart.rego").display(),
        repo("policies/manufacturing/egress.rego").display(),
        dir.path("policy-data").display(),
    );
    for b in bridges {
        for (i, line) in b.lines().filter(|l| !l.trim().is_empty()).enumerate() {
            let lead = if i == 0 { "  - " } else { "    " };
            s.push_str(&format!("{lead}{line}\n"));
        }
    }
    (s, admin)
}

/// A running `sluice serve`; killed on drop.
pub struct Sluice {
    child: Child,
    pub admin: SocketAddr,
    config: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
}

impl Sluice {
    /// Starts sluice and waits until the admin endpoint answers.
    pub fn start(dir: &Dir, config: &str, admin: SocketAddr) -> Self {
        let path = dir.file("sluice.yaml", config);
        Self::spawn(path, admin)
    }

    fn spawn(config: PathBuf, admin: SocketAddr) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["serve", "-c"])
            .arg(&config)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start sluice: {e}"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            let Some(stderr) = stderr else { return };
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        let mut s = Self {
            child,
            admin,
            config,
            log,
        };
        let start = Instant::now();
        while !s.metrics().contains("sluice_ready 1") {
            if let Ok(Some(status)) = s.child.try_wait() {
                panic!("sluice exited with {status}: {}", s.logs());
            }
            assert!(start.elapsed() < WAIT, "sluice did not start: {}", s.logs());
            std::thread::sleep(Duration::from_millis(25));
        }
        s
    }

    /// SIGKILL, then the same config again.
    pub fn kill_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let next = Self::spawn(self.config.clone(), self.admin);
        *self = next;
    }

    pub fn logs(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .join("\n")
    }

    pub fn metrics(&self) -> String {
        let Ok(mut s) = TcpStream::connect_timeout(&self.admin, Duration::from_secs(2)) else {
            return String::new();
        };
        let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    /// One sample of bridge `cloud`, e.g. `sent_total` or `dropped_total{reason="full"}`.
    pub fn bridge(&self, metric: &str) -> f64 {
        self.bridge_of("cloud", metric)
    }

    /// One sample of bridge `name`.
    pub fn bridge_of(&self, bridge: &str, metric: &str) -> f64 {
        let (name, extra) = match metric.split_once('{') {
            Some((n, rest)) => (n, format!(",{}", rest.trim_end_matches('}'))),
            None => (metric, String::new()),
        };
        let sample = format!("sluice_bridge_{name}{{bridge=\"{bridge}\"{extra}}}");
        self.metrics()
            .lines()
            .find_map(|l| l.strip_prefix(&sample).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0.0)
    }

    /// Waits until the spool holds nothing (every message sent, expired or removed).
    pub fn wait_spool_empty(&self) {
        wait_until(
            || self.bridge("spool_messages") == 0.0,
            || self.bridge_metrics(),
        );
    }

    pub fn wait_bridge(&self, metric: &str, at_least: f64) {
        self.wait_bridge_of("cloud", metric, at_least)
    }

    pub fn wait_bridge_of(&self, bridge: &str, metric: &str, at_least: f64) {
        wait_until(
            || self.bridge_of(bridge, metric) >= at_least,
            || {
                format!(
                    "{metric} < {at_least}:\n{}\n{}",
                    self.bridge_metrics(),
                    self.logs()
                )
            },
        );
    }

    pub fn bridge_metrics(&self) -> String {
        self.metrics()
            .lines()
            .filter(|l| l.starts_with("sluice_bridge_"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Sluice {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Publishes every (topic, payload) with QoS 1 and returns once the broker acknowledged all.
pub async fn publish_all(broker: SocketAddr, messages: Vec<(String, String)>) {
    publish_all_as(broker, None, messages).await
}

/// As [`publish_all`], logged in as `user` (name, password).
pub async fn publish_all_as(
    broker: SocketAddr,
    user: Option<(&str, &str)>,
    messages: Vec<(String, String)>,
) {
    let mut opts = MqttOptions::new(
        format!("pub-{}", free_port("127.0.0.1")),
        broker.ip().to_string(),
        broker.port(),
    );
    opts.set_inflight(100);
    if let Some((name, password)) = user {
        opts.set_credentials(name, password);
    }
    let (client, mut events) = AsyncClient::new(opts, 200);
    let total = messages.len();
    let sender = tokio::spawn(async move {
        for (t, p) in messages {
            if client.publish(t, QoS::AtLeastOnce, false, p).await.is_err() {
                return;
            }
        }
        let _ = client;
    });
    let mut acked = 0;
    let deadline = tokio::time::Instant::now() + WAIT;
    while acked < total {
        match tokio::time::timeout_at(deadline, events.poll()).await {
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => acked += 1,
            Ok(Ok(_)) => {}
            other => panic!("publisher: {other:?} after {acked} of {total}"),
        }
    }
    let _ = sender.await;
}

/// Every payload that arrived at the cloud broker, with how often.
#[derive(Clone, Default)]
pub struct Arrivals(Arc<Mutex<HashMap<String, usize>>>, Arc<AtomicU64>);

impl Arrivals {
    pub fn count(&self, prefix: &str) -> usize {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .filter(|k| k.starts_with(prefix))
            .count()
    }
    pub fn has(&self, payload: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(payload)
    }
    /// Arrivals beyond the first of each payload.
    pub fn duplicates(&self) -> usize {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|n| n - 1)
            .sum()
    }
    pub fn wait(&self, prefix: &str, n: usize) {
        self.wait_or(prefix, n, String::new);
    }

    /// As `wait`, with `more()` (metrics, logs) and the first missing payloads on a timeout.
    pub fn wait_or(&self, prefix: &str, n: usize, more: impl Fn() -> String) {
        wait_until(
            || self.count(prefix) >= n,
            || {
                let missing: Vec<String> = (0..n)
                    .map(|i| format!("{prefix}{i}"))
                    .filter(|p| !self.has(p))
                    .take(10)
                    .collect();
                format!(
                    "{} of {n} {prefix}* arrived; missing {missing:?}\n{}",
                    self.count(prefix),
                    more()
                )
            },
        );
    }
}

/// A subscriber on the cloud broker with a persistent session (`#`, QoS 1): created while the
/// broker is up, it receives what arrives while it reconnects after a broker restart.
pub async fn cloud_subscriber(cloud: SocketAddr) -> Arrivals {
    let mut opts = MqttOptions::new(
        format!("cloud-watcher-{}", cloud.port()),
        cloud.ip().to_string(),
        cloud.port(),
    );
    opts.set_clean_session(false)
        .set_credentials(WATCHER.0, WATCHER.1);
    let (client, mut events) = AsyncClient::new(opts, 10);
    let arrivals = Arrivals::default();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let sink = arrivals.clone();
    let connected = Arc::clone(&arrivals.1);
    tokio::spawn(async move {
        let mut ready = Some(ready_tx);
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(a))) => {
                    connected.fetch_add(1, Ordering::SeqCst);
                    if !a.session_present {
                        let _ = client.subscribe("#", QoS::AtLeastOnce).await;
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let text = String::from_utf8_lossy(&p.payload).into_owned();
                    *sink
                        .0
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .entry(text)
                        .or_default() += 1;
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    });
    let _ = tokio::time::timeout(WAIT, ready_rx).await;
    arrivals
}

/// A cloud broker that is down: configured, a persistent subscriber registered, then stopped.
pub async fn cloud_down() -> (Broker, Arrivals) {
    let mut cloud = Broker::new("127.0.0.2", "");
    cloud.gate();
    cloud.start();
    let arrivals = cloud_subscriber(cloud.addr).await;
    cloud.stop();
    (cloud, arrivals)
}

/// Starts the cloud broker again and lets sluice in only once the subscriber is back, so that
/// nothing the bridge sends can reach the broker before the subscriber's session is live.
pub fn cloud_back(cloud: &mut Broker, arrivals: &Arrivals) {
    let before = arrivals.1.load(Ordering::SeqCst);
    cloud.start();
    wait_until(
        || arrivals.1.load(Ordering::SeqCst) > before,
        || "the cloud subscriber did not reconnect".into(),
    );
    cloud.open_gate();
}

/// `n` messages on `topic` with payloads `{prefix}{i}`.
pub fn messages(topic: &str, prefix: &str, n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| (topic.to_string(), format!("{prefix}{i}")))
        .collect()
}
