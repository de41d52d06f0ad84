//! MQTT peers of the gateway tests: a mosquitto broker per test on a free port, the config of
//! sluice's MQTT listeners, the mosquitto command-line clients, a rumqttc subscriber connected
//! straight to the broker that records what arrives, and a raw client with packet builders for
//! bytes no well-behaved client would send.
//!
//! Needs /usr/sbin/mosquitto, mosquitto_pub and mosquitto_sub (Debian: mosquitto,
//! mosquitto-clients).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::launcher::Sluice;
use super::tempdir::TempDir;
use super::{WAIT, free_port, free_port_on, repo, wait_for_port};

/// A mosquitto broker of its own.
pub struct Broker {
    pub addr: SocketAddr,
    child: Option<Child>,
    conf: PathBuf,
    _dir: TempDir,
}

impl Broker {
    pub fn start() -> Self {
        Self::start_on("127.0.0.1", "")
    }

    /// A broker on `ip` (any 127.0.0.0/8 address works on Linux), with extra config lines.
    pub fn start_on(ip: &str, extra: &str) -> Self {
        let dir = TempDir::new("mosquitto");
        let port = free_port_on(ip);
        let conf = dir.file(
            "mosquitto.conf",
            &format!(
                "listener {port} {ip}\nallow_anonymous true\nmax_connections -1\npersistence false\n{extra}\n"
            ),
        );
        let addr: SocketAddr = format!("{ip}:{port}")
            .parse()
            .unwrap_or_else(|e| panic!("{ip}:{port}: {e}"));
        let mut b = Self {
            addr,
            child: None,
            conf,
            _dir: dir,
        };
        b.spawn();
        b
    }

    fn spawn(&mut self) {
        let child = Command::new("/usr/sbin/mosquitto")
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run /usr/sbin/mosquitto (apt-get install mosquitto): {e}")
            });
        self.child = Some(child);
        wait_for_port(self.addr);
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops and starts the broker on the same address.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The sluice config of one MQTT listener in front of `broker`, with the test policy.
pub fn config_with(listeners: &[(String, &str)], policy: &str) -> String {
    let mut s = format!(
        "http: null\nadmin: {{listen: 127.0.0.1:{}}}\nlog: {{level: info}}\n{policy}\nmqtt:\n",
        free_port()
    );
    for (upstream, extra) in listeners {
        s.push_str(&format!(
            "  - listen: 127.0.0.1:{}\n    upstream: {upstream}\n",
            free_port()
        ));
        for line in extra.lines().filter(|l| !l.trim().is_empty()) {
            s.push_str(&format!("    {}\n", line.trim()));
        }
    }
    s
}

/// The policy section selecting the fixture test policy (denies `secret/...`).
pub fn test_policy() -> String {
    format!(
        "policy:\n  paths: [{}]\n  decision: data.mqtt_test\n",
        repo("fixtures/mqtt/policy").display()
    )
}

/// `sluice serve` with one MQTT listener in front of `broker` (`extra`: keys of that listener)
/// and the fixture test policy.
pub fn sluice_for(broker: &Broker, extra: &str) -> Sluice {
    Sluice::serve(&config_with(
        &[(broker.addr.to_string(), extra)],
        &test_policy(),
    ))
}

/// Runs mosquitto_pub against `addr`.
pub fn mosquitto_pub(addr: SocketAddr, args: &[&str]) -> Output {
    Command::new("mosquitto_pub")
        .args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run mosquitto_pub (apt-get install mosquitto-clients): {e}")
        })
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// One message as a subscriber saw it: topic, payload, retain flag.
pub type Received = (String, Vec<u8>, bool);

/// A subscriber connected straight to a broker (MQTT 3.1.1, rumqttc), recording
/// (topic, payload, retain) of every message.
pub struct Watcher {
    pub got: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    pub async fn start(addr: SocketAddr, filters: &[&str]) -> Self {
        use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
        static N: AtomicU64 = AtomicU64::new(0);
        let id = format!(
            "watcher-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
        opts.set_max_packet_size(4 << 20, 4 << 20);
        let (client, mut events) = AsyncClient::new(opts, 100);
        for f in filters {
            client
                .subscribe(*f, QoS::AtLeastOnce)
                .await
                .unwrap_or_else(|e| panic!("subscribe: {e}"));
        }
        let got = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel();
        let sink = Arc::clone(&got);
        let task = tokio::spawn(async move {
            let _client = client;
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = ready_tx.send(());
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        sink.lock().unwrap_or_else(|e| e.into_inner()).push((
                            p.topic.clone(),
                            p.payload.to_vec(),
                            p.retain,
                        ));
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        for _ in filters {
            tokio::time::timeout(WAIT, ready_rx.recv())
                .await
                .unwrap_or_else(|_| panic!("no SUBACK from the broker at {addr}"));
        }
        Self { got, task }
    }

    pub fn count(&self, topic: &str) -> usize {
        self.got
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(t, _, _)| t == topic)
            .count()
    }

    pub fn topics(&self) -> Vec<String> {
        self.got
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(t, _, _)| t.clone())
            .collect()
    }

    pub fn payloads(&self, topic: &str) -> Vec<Vec<u8>> {
        self.got
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(t, _, _)| t == topic)
            .map(|(_, p, _)| p.clone())
            .collect()
    }

    /// Waits until `topic` has arrived `n` times.
    pub async fn wait_for(&self, topic: &str, n: usize) {
        let start = Instant::now();
        while self.count(topic) < n {
            assert!(
                start.elapsed() < WAIT,
                "{topic} arrived {} of {n} times; got {:?}",
                self.count(topic),
                self.topics()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A raw MQTT client over a plain socket, for bytes no well-behaved client would send.
pub struct Raw {
    pub s: TcpStream,
}

impl Raw {
    pub fn connect(addr: SocketAddr) -> Self {
        let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        let _ = s.set_read_timeout(Some(WAIT));
        Self { s }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        let _ = self.s.write_all(bytes);
    }

    /// Reads until the peer closes; returns everything received.
    pub fn read_to_close(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = self.s.read_to_end(&mut out);
        out
    }

    /// Reads one packet (fixed header with a one-byte remaining length, and its body).
    pub fn read_packet(&mut self) -> Vec<u8> {
        let mut out = self.read_n(2);
        let body = self.read_n(out[1] as usize);
        out.extend_from_slice(&body);
        out
    }

    /// Reads exactly `n` bytes.
    pub fn read_n(&mut self, n: usize) -> Vec<u8> {
        let mut out = vec![0; n];
        self.s
            .read_exact(&mut out)
            .unwrap_or_else(|e| panic!("reading {n} bytes: {e}"));
        out
    }
}

/// A CONNECT for MQTT 3.1.1 (level 4) or 5 with a client id, clean start, keep-alive 60.
pub fn connect_packet(level: u8, client_id: &str) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', level, 0x02, 0, 60];
    if level == 5 {
        body.push(0);
    }
    body.extend_from_slice(&(client_id.len() as u16).to_be_bytes());
    body.extend_from_slice(client_id.as_bytes());
    frame(0x10, &body)
}

/// A PUBLISH (QoS 0 unless `qos_id` gives QoS and packet id); `props` only for level 5.
pub fn publish_packet(
    topic: &[u8],
    qos_id: Option<(u8, u16)>,
    props: Option<&[u8]>,
    payload: &[u8],
) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    body.extend_from_slice(topic);
    let mut first = 0x30;
    if let Some((qos, id)) = qos_id {
        first |= qos << 1;
        body.extend_from_slice(&id.to_be_bytes());
    }
    if let Some(p) = props {
        body.push(p.len() as u8);
        body.extend_from_slice(p);
    }
    body.extend_from_slice(payload);
    frame(first, &body)
}

pub fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    sluice::proxy::mqtt::encode::encode_frame(first, body)
}
