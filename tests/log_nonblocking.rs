//! Logging never blocks the data path: with sluice's stderr a pipe that nobody reads (a stalled
//! log shipper), a flood of logged events still leaves every listener serving, and the lines
//! that could not be queued are counted in `sluice_log_lines_dropped_total`.
//!
//! Needs: nothing but the binary (no broker: every MQTT session here fails at its first packet).

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

#[test]
fn a_stalled_stderr_never_stalls_the_data_path_and_drops_are_counted() -> TestResult {
    let dir = TempDir::new("log-nonblocking");
    let (admin, mqtt) = (free_addr(), free_addr());
    let path = dir.file(
        "sluice.yaml",
        &format!(
            "admin: {{listen: {admin}}}\nhttp: null\nlog: {{level: debug}}\n\
             mqtt:\n  - listen: {mqtt}\n    upstream: 127.0.0.1:9\n"
        ),
    );
    // stderr is a pipe we never read: once its 64 KiB fill, a blocking writer would stall.
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "-c"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let result = (|| -> TestResult {
        wait_until(WAIT, "sluice ready", || {
            http_get(admin, "/readyz").is_ok_and(|(status, _)| status == 200)
        });
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
        let (_, metrics) = http_get(admin, "/metrics")?;
        let dropped = sample(&metrics, "sluice_log_lines_dropped_total");
        assert!(
            dropped > 0.0,
            "lines the writer could not queue are counted"
        );
        assert_eq!(http_get(admin, "/readyz")?.0, 200, "still serving");
        Ok(())
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}
