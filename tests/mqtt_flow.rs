//! Flow control and shutdown: a broker that stops reading stalls its client instead of filling
//! sluice's memory, and SIGTERM closes sessions with DISCONNECT 0x8B (MQTT 5) and exits 0.
//!
//! Needs mosquitto.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use support::*;

/// The resident memory of `pid` in KiB. A reading that fails fails the test: a 0 would make
/// any bound on growth hold without measuring anything.
fn rss_kib(pid: u32) -> u64 {
    let path = format!("/proc/{pid}/status");
    let status =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in {path} (is it a process?):\n{status}"))
}

#[test]
fn a_broker_that_stops_reading_stalls_the_client_not_sluices_memory() {
    // A "broker" that accepts, answers CONNACK, and then never reads again.
    let Ok(fake) = TcpListener::bind("127.0.0.1:0") else {
        panic!("bind");
    };
    let upstream = fake.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let holder = std::thread::spawn(move || {
        let Ok((mut s, _)) = fake.accept() else {
            return None;
        };
        let mut connect = [0u8; 64];
        let _ = s.read(&mut connect);
        let _ = s.write_all(&[0x20, 2, 0, 0]);
        Some(s) // kept open, never read
    });
    let sluice = Sluice::serve(&config_with(&[(upstream, "")], &test_policy()));
    let rss_before = rss_kib(sluice.pid());
    let mut raw = Raw::connect(sluice.addr());
    raw.send(&connect_packet(4, "firehose"));
    assert_eq!(raw.read_packet(), vec![0x20, 2, 0, 0]);
    let _ = raw.s.set_write_timeout(Some(Duration::from_secs(2)));
    let msg = publish_packet(b"plant/line1/firehose", None, None, &[0x5a; 64 * 1024]);
    let mut sent = 0usize;
    let start = Instant::now();
    // Up to 256 MiB; the writes must block long before that.
    while sent < 256 << 20 && start.elapsed() < WAIT {
        match raw.s.write(&msg) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    // Kernel socket buffers on both hops hold some megabytes; sluice itself at most a packet.
    assert!(
        sent < 64 << 20,
        "the client could write {sent} bytes into a stalled broker"
    );
    let grown = rss_kib(sluice.pid()).saturating_sub(rss_before);
    assert!(
        grown < 16 * 1024,
        "sluice grew by {grown} KiB while the broker stalled"
    );
    drop(raw);
    let _ = holder.join();
}

#[test]
fn sigterm_sends_mqtt5_clients_disconnect_0x8b_and_exits_cleanly() {
    let broker = Broker::start();
    let mut sluice = sluice_for(&broker, "");
    let mut v5 = Raw::connect(sluice.addr());
    v5.send(&connect_packet(5, "leaving"));
    let connack = v5.read_packet();
    assert_eq!(connack[..4], [0x20, connack[1], 0, 0], "{connack:?}");
    let mut v3 = Raw::connect(sluice.addr());
    v3.send(&connect_packet(4, "leaving-v3"));
    assert_eq!(v3.read_packet(), vec![0x20, 2, 0, 0]);

    sluice.sigterm();
    assert_eq!(v5.read_to_close(), vec![0xE0, 2, 0x8B, 0]);
    assert_eq!(v3.read_to_close(), Vec::<u8>::new());
    let code = sluice.wait_exit();
    assert_eq!(code, Some(0), "{}", sluice.logs());
}

#[test]
fn a_listen_address_in_use_fails_with_one_line_naming_it() {
    let Ok(taken) = TcpListener::bind("127.0.0.1:0") else {
        panic!("bind");
    };
    let addr = taken
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let dir = TempDir::new("inuse");
    let config = format!(
        "http: null\nadmin: {{listen: 127.0.0.1:{}}}\nmqtt:\n  - listen: {addr}\n    upstream: 127.0.0.1:1\n",
        free_port()
    );
    let path = dir.file("sluice.yaml", &config);
    let out = sluice(&["serve", "-c", &path.display().to_string()]);
    assert_eq!(out.code, 1);
    let stderr = out.stderr;
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!(
            "sluice serve: mqtt listener {addr}: cannot listen: "
        )),
        "{stderr}"
    );
}

#[test]
fn max_connections_makes_further_clients_wait_until_a_slot_frees() {
    let broker = Broker::start();
    let sluice = sluice_for(&broker, "max_connections: 1");
    let mut first = Raw::connect(sluice.addr());
    first.send(&connect_packet(4, "first"));
    assert_eq!(first.read_packet(), vec![0x20, 2, 0, 0]);
    // The second client is accepted by the kernel but not served while the first is open.
    let mut second = Raw::connect(sluice.addr());
    second.send(&connect_packet(4, "second"));
    let _ = second.s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut byte = [0u8; 1];
    assert!(
        second.s.read(&mut byte).is_err(),
        "the second client was served beyond max_connections"
    );
    drop(first);
    let _ = second.s.set_read_timeout(Some(WAIT));
    assert_eq!(second.read_packet(), vec![0x20, 2, 0, 0]);
}
