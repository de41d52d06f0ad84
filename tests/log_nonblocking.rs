//! Logging never blocks the data path: with sluice's stderr a pipe that nobody reads (a stalled
//! log shipper), a flood of logged events still leaves every listener serving, and the lines
//! that could not be queued are counted in `sluice_log_lines_dropped_total`.
//!
//! Needs: nothing but the binary (no broker: every MQTT session here fails at its first packet).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

type Error = Box<dyn std::error::Error>;

fn free_port() -> Result<u16, Error> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn get(addr: SocketAddr, path: &str) -> Result<String, Error> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

fn metric(admin: SocketAddr, name: &str) -> Result<f64, Error> {
    let body = get(admin, "/metrics")?;
    Ok(body
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0))
}

#[test]
fn a_stalled_stderr_never_stalls_the_data_path_and_drops_are_counted() -> Result<(), Error> {
    let dir = std::env::temp_dir().join(format!("sluice-lognb-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (admin, mqtt): (SocketAddr, SocketAddr) = (
        format!("127.0.0.1:{}", free_port()?).parse()?,
        format!("127.0.0.1:{}", free_port()?).parse()?,
    );
    let config = format!(
        "admin: {{listen: {admin}}}\nhttp: null\nlog: {{level: debug}}\n\
         mqtt:\n  - listen: {mqtt}\n    upstream: 127.0.0.1:9\n"
    );
    let path = dir.join("sluice.yaml");
    std::fs::write(&path, config)?;
    // stderr is a pipe we never read: once its 64 KiB fill, a blocking writer would stall.
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "-c"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let result = (|| -> Result<(), Error> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !get(admin, "/readyz").is_ok_and(|r| r.starts_with("HTTP/1.1 200")) {
            if Instant::now() > deadline {
                return Err("sluice not ready in 30s".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // Each garbage session ends with one debug line (~150 bytes): far more than the pipe
        // and the writer's queue hold together.
        for _ in 0..24_000 {
            let mut s = TcpStream::connect(mqtt)?;
            s.set_read_timeout(Some(Duration::from_secs(20)))?;
            s.write_all(&[0xF0, 0x00])?;
            let mut sink = [0u8; 16];
            // The session closes once it has judged the packet; a stalled logger would hang here.
            let _ = s.read(&mut sink);
        }
        let dropped = metric(admin, "sluice_log_lines_dropped_total")?;
        assert!(
            dropped > 0.0,
            "lines the writer could not queue are counted"
        );
        let ready = get(admin, "/readyz")?;
        assert!(ready.starts_with("HTTP/1.1 200"), "still serving: {ready}");
        Ok(())
    })();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    result
}
