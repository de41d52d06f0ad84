//! Logging never blocks the data path: with sluice's stderr a pipe that nobody reads (a stalled
//! log shipper), a flood of logged events still leaves every listener serving, and the lines
//! that could not be queued are counted in `sluice_log_lines_dropped_total`.
//!
//! Needs: nothing but the binary (no broker: every MQTT session here fails at its first packet).

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use support::{Error, LaunchOptions, Scrape, Sluice, free_addr, http_get};

/// `n` sessions, one after another, each sending a packet no MQTT client may send first.
fn garbage_sessions(mqtt: SocketAddr, n: usize) -> Result<(), Error> {
    for _ in 0..n {
        let mut s = TcpStream::connect(mqtt)?;
        s.set_read_timeout(Some(Duration::from_secs(20)))?;
        s.write_all(&[0xF0, 0x00])?;
        let mut sink = [0u8; 16];
        // The session closes once it has judged the packet; a stalled logger would hang here.
        let _ = s.read(&mut sink);
    }
    Ok(())
}

#[test]
fn a_stalled_stderr_never_stalls_the_data_path_and_drops_are_counted() -> Result<(), Error> {
    let (admin, mqtt) = (free_addr(), free_addr());
    let config = format!(
        "admin: {{listen: {admin}}}\nhttp: null\nlog: {{level: debug}}\n\
         mqtt:\n  - listen: {mqtt}\n    upstream: 127.0.0.1:9\n"
    );
    // stderr is a pipe we never read: once its 64 KiB fill, a blocking writer would stall.
    let options = LaunchOptions {
        unread_stderr: true,
        ..LaunchOptions::default()
    };
    let sluice = Sluice::launch(&config, options);
    // Each garbage session ends with one debug line (~150 bytes): 24,000 of them are far more
    // than the pipe and the writer's queue hold together. Two clients at once: both cores.
    let clients: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(move || garbage_sessions(mqtt, 12_000)))
        .collect();
    for c in clients {
        c.join().map_err(|_| "a client thread panicked")??;
    }
    let dropped = sluice.metric("sluice_log_lines_dropped_total");
    assert!(
        dropped > 0.0,
        "lines the writer could not queue are counted"
    );
    let (status, body) = http_get(sluice.admin, "/readyz")?;
    assert_eq!(status, 200, "still serving: {body}");
    Ok(())
}
