//! Non-ASCII names in the config: `sluice serve -c` with `"é.local"` in `site.local_domains`
//! starts (it used to panic slicing the name) and treats the name as it arrives on the wire,
//! in its IDNA (punycode) form; a name IDNA refuses is a one-line error naming the key.
//!
//! Self-contained (the real binary, real sockets on loopback); no system programs needed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

type Error = Box<dyn std::error::Error>;

/// A directory for one test, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Result<Self, Error> {
        let dir = std::env::temp_dir().join(format!("sluice-names-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `sluice serve`, killed on drop.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_addr() -> Result<SocketAddr, Error> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

fn write_config(dir: &Path, domains: &str, proxy: SocketAddr, admin: SocketAddr) -> PathBuf {
    let path = dir.join("sluice.yaml");
    let text = format!(
        "site:\n  local_networks: [127.0.0.1/32]\n  local_domains: {domains}\n\
         http:\n  listen: {proxy}\n  connect_timeout: 2s\nadmin:\n  listen: {admin}\n"
    );
    std::fs::write(&path, text)
        .map(|()| path)
        .unwrap_or_default()
}

/// One HTTP/1.1 exchange; the status code.
fn status_of(addr: SocketAddr, request: &str) -> Result<u16, Error> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.write_all(request.as_bytes())?;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: {text:?}").into())
}

/// Starts `sluice serve -c config` and waits until /readyz answers 200.
fn serve(config: &Path, admin: SocketAddr, stderr: &Path) -> Result<Serve, Error> {
    let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "-c"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr)?)
        .spawn()?;
    let mut serve = Serve(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    let readyz = format!("GET /readyz HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n");
    loop {
        if let Some(status) = serve.0.try_wait()? {
            let log = std::fs::read_to_string(stderr).unwrap_or_default();
            return Err(format!("sluice serve exited ({status}): {log}").into());
        }
        if matches!(status_of(admin, &readyz), Ok(200)) {
            return Ok(serve);
        }
        if Instant::now() > deadline {
            return Err("sluice serve not ready in 30s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `sluice serve -c config`, which must exit within 30s; (exit code, stderr).
fn run_to_exit(config: &Path, stderr: &Path) -> Result<(Option<i32>, String), Error> {
    let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "-c"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr)?)
        .spawn()?;
    let mut serve = Serve(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = serve.0.try_wait()? {
            return Ok((status.code(), std::fs::read_to_string(stderr)?));
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(stderr).unwrap_or_default();
            return Err(format!("sluice serve still running after 30s: {log}").into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn proxied_get(proxy: SocketAddr, host: &str) -> Result<u16, Error> {
    status_of(
        proxy,
        &format!("GET http://{host}:9/ HTTP/1.1\r\nHost: {host}:9\r\nConnection: close\r\n\r\n"),
    )
}

#[test]
fn a_non_ascii_local_domain_is_local_in_its_punycode_form() -> Result<(), Error> {
    let dir = Dir::new("idna")?;
    let (proxy, admin) = (free_addr()?, free_addr()?);
    let config = write_config(
        &dir.0,
        "[\"é.local\", \"*.Bäckerei.internal\"]",
        proxy,
        admin,
    );
    let _serve = serve(&config, admin, &dir.0.join("stderr"))?;

    // An external name is refused by the shipped policy before any lookup...
    assert_eq!(proxied_get(proxy, "historian.example")?, 403);
    // ...while the configured names, as clients send them (IDNA), are local: looked up (and,
    // not existing, answered as a gateway error), never refused as an export.
    for host in [
        "xn--9ca.local",
        "XN--9CA.LOCAL",
        "ofen.xn--bckerei-5wa.internal",
    ] {
        let status = proxied_get(proxy, host)?;
        assert!(status == 502 || status == 504, "{host}: {status}");
    }
    Ok(())
}

#[test]
fn a_name_idna_refuses_is_a_one_line_error_naming_the_key() -> Result<(), Error> {
    let dir = Dir::new("refused")?;
    let (proxy, admin) = (free_addr()?, free_addr()?);
    let config = write_config(&dir.0, "[localhost, \"é local\"]", proxy, admin);
    let (status, stderr) = run_to_exit(&config, &dir.0.join("stderr"))?;
    assert_eq!(status, Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "sluice serve: {}: site.local_domains[1]: \"é local\" ",
            config.display()
        )),
        "{stderr}"
    );
    Ok(())
}
