//! Bad days for the whole process: sluice SIGKILLed under load and restarted without its
//! bundle server, and sluice out of file descriptors. Each ends with the clients that did
//! nothing wrong served again, nothing denied through, and the fault counted.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use support::*;

/// One proxied request with `Connection: close`: the status, 0 when the proxy is not there.
fn proxied(proxy: SocketAddr, target: SocketAddr, path: &str) -> u16 {
    let req = format!(
        "GET http://{target}{path} HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n"
    );
    raw_exchange(proxy, req.as_bytes())
        .and_then(|r| parse_response(&r))
        .map_or(0, |(code, _)| code)
}

/// What the load generator saw.
#[derive(Default)]
struct Seen {
    allowed_ok: AtomicUsize,
    /// A request the policy denies that got anything but 403 or no answer at all.
    denied_leaked: AtomicUsize,
}

#[test]
fn sluice_killed_under_load_comes_back_on_the_persisted_bundle_with_an_intact_decision_log() {
    let dir = TempDir::new("chaos-kill");
    let (persist, db) = (dir.join("persist"), dir.join("decisions.db"));
    let inside = Upstream::start("127.0.0.1", Duration::ZERO).unwrap_or_else(|e| panic!("{e}"));
    let outside = Upstream::start("127.0.0.2", Duration::ZERO).unwrap_or_else(|e| panic!("{e}"));
    let entry = serde_json::json!([{"name": "upload", "host": "127.0.0.2", "protocols": ["http"], "paths": ["/upload"]}]);
    let server = BundleHttp::start(shipped_bundle("chaos-1", entry), "\"1\"");
    // One config for both runs: the same ports, so the clients find the restarted gateway.
    let config = gateway_config(&format!(
        "policy:\n  eval_timeout: 5s\n  decision: data.manufacturing.egress\n  on_missing_policy: deny_exports\n  bundle:\n    url: {}\n    poll_min: 50ms\n    poll_max: 100ms\n    timeout: 1s\n    persist_dir: {}\ndecision_log:\n  path: {}\n  sample_allowed: 1\n",
        server.url(),
        persist.display(),
        db.display()
    ));
    let mut first = Sluice::serve(&config);
    let proxy = first.proxy();
    wait_until(WAIT, "the bundle persisted", || {
        persist.join("bundle.meta").is_file()
    });

    let seen = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|i| {
            let (seen, stop) = (seen.clone(), stop.clone());
            let (inside, outside) = (inside.addr, outside.addr);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    // Allowed: local traffic, and the one export the allowlist names.
                    let (target, path) = match i % 2 {
                        0 => (inside, "/line1/temp"),
                        _ => (outside, "/upload"),
                    };
                    if proxied(proxy, target, path) == 200 {
                        seen.allowed_ok.fetch_add(1, Ordering::Relaxed);
                    }
                    // Denied: an export the allowlist does not name.
                    match proxied(proxy, outside, "/secret-batch") {
                        0 | 403 => {}
                        _ => {
                            seen.denied_leaked.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    wait_until(WAIT, "load flowing", || {
        seen.allowed_ok.load(Ordering::Relaxed) >= 100
    });
    // SAFETY: kill has no memory preconditions; the pid is our own child's.
    let killed = unsafe { libc::kill(first.pid() as i32, libc::SIGKILL) };
    assert_eq!(killed, 0);
    assert_eq!(first.wait_exit(), None, "SIGKILL leaves no exit code");
    drop(server);

    let second = Sluice::serve(&config);
    let (code, body) = http_get(second.admin, "/v1/status").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 200, "{body}");
    let status: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}"));
    let bundle = &status["result"]["bundles"]["sluice"];
    assert_eq!(bundle["origin"], "persisted", "{status}");
    assert_eq!(bundle["active_revision"], "chaos-1", "{status}");
    // The clients recover on their own: allowed requests succeed again through the new process.
    let before = seen.allowed_ok.load(Ordering::Relaxed);
    wait_until(WAIT, "the load served by the restarted gateway", || {
        seen.allowed_ok.load(Ordering::Relaxed) >= before + 100
    });
    stop.store(true, Ordering::Relaxed);
    for t in load {
        let _ = t.join();
    }
    assert_eq!(seen.denied_leaked.load(Ordering::Relaxed), 0);
    assert!(
        outside.requests().iter().all(|r| r.uri != "/secret-batch"),
        "a denied export reached the outside server"
    );
    assert!(
        second.metric(
            "sluice_decisions_total{protocol=\"http\",operation=\"request\",verdict=\"deny\"}"
        ) > 0.0
    );
    drop(second);

    // The decision log written by the killed process is whole, and readable.
    let conn = rusqlite::Connection::open(&db).unwrap_or_else(|e| panic!("{e}"));
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(check, "ok");
    let out = sluice(&["log", "--db", &db.to_string_lossy(), "--verdict", "deny"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("/secret-batch"), "{}", out.stdout);
}

/// Open descriptors of a process.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

#[test]
fn out_of_file_descriptors_new_clients_are_closed_at_once_open_flows_keep_moving_and_it_recovers() {
    let echo = echo_server();
    let upstream = Upstream::start("127.0.0.1", Duration::ZERO).unwrap_or_else(|e| panic!("{e}"));
    let sluice = Sluice::start("policy:\n  eval_timeout: 5s\n");
    let mut open = tunnel(sluice.proxy(), echo);
    assert!(echoes(&mut open, b"before"));

    // Lower the running process's limit to what it holds now plus two.
    let pid = sluice.pid();
    let limit = open_fds(pid) + 2;
    let set = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &pid.to_string(),
            &format!("--nofile={limit}:{limit}"),
        ])
        .status()
        .unwrap_or_else(|e| panic!("prlimit: {e}"));
    assert!(set.success());
    // Idle clients take the last descriptors; the ones after them are closed at once.
    let mut idle = Vec::new();
    let mut refused = 0;
    for _ in 0..8 {
        let mut s = std::net::TcpStream::connect(sluice.proxy()).unwrap_or_else(|e| panic!("{e}"));
        let _ = s.set_read_timeout(Some(Duration::from_millis(300)));
        let mut b = [0u8; 1];
        match std::io::Read::read(&mut s, &mut b) {
            Ok(0) => refused += 1,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => refused += 1,
            _ => idle.push(s),
        }
    }
    assert!(
        refused >= 4,
        "only {refused} of 8 clients were closed at once"
    );
    // The tunnel opened before keeps moving: it needs no new descriptor.
    assert!(echoes(&mut open, b"while out of descriptors"));

    // Clients leave; the gateway serves new ones again with the same limit.
    drop(idle);
    wait_until(WAIT, "a new request served", || {
        proxied(sluice.proxy(), upstream.addr, "/after") == 200
    });
    assert!(
        sluice.metric("sluice_errors_total{protocol=\"http\",kind=\"out_of_descriptors\"}") >= 1.0
    );
    assert!(
        sluice
            .logs()
            .contains("out of file descriptors: new connections are closed at once"),
        "{}",
        sluice.logs()
    );
}

/// An MQTT publisher through sluice that reconnects whenever its session ends: QoS 0
/// publishes, alternating a topic the fixture policy allows and one it denies (`secret/`).
fn restless_publisher(addr: SocketAddr, stop: Arc<AtomicBool>, sent_ok: Arc<AtomicUsize>) {
    use std::io::{Read, Write};
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut s) = std::net::TcpStream::connect(addr) else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let mut ack = [0u8; 4];
        let connected = s
            .write_all(&mqtt::connect_packet(4, "restless"))
            .and_then(|_| s.read_exact(&mut ack))
            .is_ok()
            && ack[3] == 0;
        while connected && !stop.load(Ordering::Relaxed) {
            n += 1;
            let allowed = mqtt::publish_packet(b"plant/line1/temp", None, None, &n.to_be_bytes());
            let denied = mqtt::publish_packet(b"secret/recipe", None, None, &n.to_be_bytes());
            if s.write_all(&allowed)
                .and_then(|_| s.write_all(&denied))
                .is_err()
            {
                break;
            }
            sent_ok.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_mid_stream_lets_nothing_denied_through_and_publishers_come_back() {
    let mut broker = mqtt::Broker::start();
    let sluice = tokio::task::block_in_place(|| mqtt::sluice_for(&broker, ""));
    let (stop, sent) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let publisher = {
        let (addr, stop, sent) = (sluice.addr(), stop.clone(), sent.clone());
        std::thread::spawn(move || restless_publisher(addr, stop, sent))
    };
    let before = mqtt::Watcher::start(broker.addr, &["#"]).await;
    before.wait_for("plant/line1/temp", 50).await;
    assert_eq!(before.count("secret/recipe"), 0, "{:?}", before.topics());
    drop(before);
    tokio::task::block_in_place(|| broker.restart());
    let after = mqtt::Watcher::start(broker.addr, &["#"]).await;
    // The publisher's session ended with the broker; it reconnects through sluice and its
    // allowed messages arrive again.
    after.wait_for("plant/line1/temp", 50).await;
    stop.store(true, Ordering::Relaxed);
    let _ = tokio::task::spawn_blocking(move || publisher.join()).await;
    assert_eq!(after.count("secret/recipe"), 0, "{:?}", after.topics());
    assert!(
        sluice.metric(
            "sluice_decisions_total{protocol=\"mqtt\",operation=\"publish\",verdict=\"deny\"}"
        ) > 0.0
    );
}

/// One CONNECT through `proxy`: the status line's code.
fn connect_status(proxy: SocketAddr, target: SocketAddr) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(proxy) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(WAIT));
    let req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
    let _ = s.write_all(req.as_bytes());
    let mut head = [0u8; 12];
    match s.read_exact(&mut head) {
        Ok(()) => String::from_utf8_lossy(&head[9..12]).into_owned(),
        Err(_) => String::new(),
    }
}

#[test]
fn open_tunnels_are_bounded_by_max_connections_though_their_http_connection_has_ended() {
    let echo = echo_server();
    let sluice = Sluice::start("{HTTP}  max_connections: 1\npolicy:\n  eval_timeout: 5s\n");
    let mut open = tunnel(sluice.proxy(), echo);
    assert!(echoes(&mut open, b"one tunnel"));
    // The tunnel's HTTP connection handed its socket over and freed its slot; the tunnel still
    // counts, so a second one is refused rather than opened past the limit.
    assert_eq!(connect_status(sluice.proxy(), echo), "503");
    assert!(sluice.metric("sluice_errors_total{protocol=\"http\",kind=\"tunnel_limit\"}") >= 1.0);
    assert!(echoes(&mut open, b"still moving"));
    drop(open);
    wait_until(WAIT, "a new tunnel once the first closed", || {
        connect_status(sluice.proxy(), echo) == "200"
    });
}
