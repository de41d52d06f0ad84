//! Load benchmark of the HTTP egress gateway, with its baselines measured in the same run:
//! small requests through sluice vs straight to the upstream vs through squid (same allow rule),
//! added latency at a fixed 1k req/s, CONNECT bulk throughput vs direct, idle RSS, and the time
//! from exec to ready.
//!
//! Run: `cargo bench --bench http_load` (squid from Debian: `apt-get install -y squid`; without
//! it the squid row is skipped). `SLUICE_BENCH_SECS` sets each closed-loop phase's length (5).

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type Error = Box<dyn std::error::Error + Send + Sync>;

const CONCURRENCY: usize = 16;
const BULK_BYTES: usize = 512 << 20;

fn main() {
    if let Err(e) = run() {
        eprintln!("http_load: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Error> {
    let secs: u64 = std::env::var("SLUICE_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let dir = std::env::temp_dir().join(format!("sluice-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let upstream = rt.block_on(small_upstream())?;
    let sink = rt.block_on(bulk_sink())?;
    println!(
        "sluice http_load: {CONCURRENCY} keep-alive connections, {secs}s per phase, upstream {upstream}"
    );

    // Cold start: exec -> /readyz 200 (policies compiled, listeners serving), median of 20.
    let mut starts = Vec::new();
    for _ in 0..20 {
        let mut s = Sluice::start(&dir)?;
        starts.push(s.started);
        s.stop();
    }
    starts.sort();
    let start_median = starts[starts.len() / 2];

    let mut sluice = Sluice::start(&dir)?;
    std::thread::sleep(Duration::from_millis(200));
    let rss_fresh = rss_kib(sluice.child.id())?;

    let url = format!("http://{upstream}/small");
    let direct = rt.block_on(closed_loop(upstream, "/small".into(), secs))?;
    let through = rt.block_on(closed_loop(sluice.proxy, url.clone(), secs))?;
    let squid = match Squid::start(&dir) {
        Ok(mut sq) => {
            let r = rt.block_on(closed_loop(sq.addr, url.clone(), secs));
            sq.stop();
            Some(r?)
        }
        Err(e) => {
            println!("squid: skipped ({e})");
            None
        }
    };
    println!();
    println!("small requests, closed loop (req/s, latency P50 / P99 / P999):");
    direct.print("direct to upstream");
    through.print("through sluice");
    if let Some(s) = &squid {
        s.print("through squid");
    }

    let rate_direct = rt.block_on(fixed_rate(upstream, "/small".into(), 1000, secs))?;
    let rate_sluice = rt.block_on(fixed_rate(sluice.proxy, url.clone(), 1000, secs))?;
    println!();
    println!("fixed 1000 req/s (latency P50 / P99 / P999):");
    rate_direct.print("direct to upstream");
    rate_sluice.print("through sluice");
    let added_p99 = rate_sluice.pct(0.99).saturating_sub(rate_direct.pct(0.99));
    let added_p50 = rate_sluice.pct(0.50).saturating_sub(rate_direct.pct(0.50));

    let bulk_direct = rt.block_on(bulk(sink, None))?;
    let bulk_sluice = rt.block_on(bulk(sink, Some(sluice.proxy)))?;
    println!();
    println!(
        "CONNECT bulk upload, {} MiB: direct {:.0} MB/s, through sluice {:.0} MB/s ({:.0}%)",
        BULK_BYTES >> 20,
        bulk_direct,
        bulk_sluice,
        100.0 * bulk_sluice / bulk_direct
    );
    // Idle: nothing for two seconds (sluice gives freed heap back within a second of a burst).
    std::thread::sleep(Duration::from_secs(2));
    let rss_after = rss_kib(sluice.child.id())?;
    // Split: the heap (anonymous) and the binary's pages the load touched (file-backed,
    // shared with the page cache, which the kernel can drop).
    let anon_after = status_kib(sluice.child.id(), "RssAnon:")?;
    let file_after = status_kib(sluice.child.id(), "RssFile:")?;
    sluice.stop();

    println!();
    println!("budgets:");
    let verdict = |ok: bool| if ok { "MEET" } else { "MISS" };
    println!(
        "  added latency P99 at 1k req/s: {:.3} ms (P50 {:.3} ms)  budget <= 0.3 ms  {}",
        ms(added_p99),
        ms(added_p50),
        verdict(added_p99 <= Duration::from_micros(300))
    );
    let ratio = bulk_sluice / bulk_direct;
    println!(
        "  CONNECT bulk vs direct: {:.0}%  budget >= 80%  {}",
        ratio * 100.0,
        verdict(ratio >= 0.8)
    );
    if let Some(s) = &squid {
        let r = through.rps() / s.rps();
        println!(
            "  small requests vs squid: {:.2}x ({:.0} vs {:.0} req/s)  budget >= 3x  {}",
            r,
            through.rps(),
            s.rps(),
            verdict(r >= 3.0)
        );
        common::budget_row(
            "HTTP small requests/s, forward proxy vs squid (same allow rule)",
            &format!("{:.0}/s", through.rps()),
            &format!("squid {:.0}/s", s.rps()),
            &format!("{r:.2}x"),
            "≥ 3x",
            r >= 3.0,
        );
    }
    let r_direct = through.rps() / direct.rps();
    println!(
        "  small requests vs direct: {:.2}x ({:.0} vs {:.0} req/s)  budget >= 0.6x  {}",
        r_direct,
        through.rps(),
        direct.rps(),
        verdict(r_direct >= 0.6)
    );
    common::budget_row(
        "HTTP small requests/s, forward proxy vs direct",
        &format!("{:.0}/s", through.rps()),
        &format!("direct {:.0}/s", direct.rps()),
        &format!("{r_direct:.2}x"),
        "≥ 0.6x",
        r_direct >= 0.6,
    );
    common::budget_row(
        "HTTP added latency, P99 at 1k req/s",
        &format!(
            "+{:.3} ms (P99 {:.3} ms)",
            ms(added_p99),
            ms(rate_sluice.pct(0.99))
        ),
        &format!("direct P99 {:.3} ms", ms(rate_direct.pct(0.99))),
        "—",
        "≤ +0.3 ms",
        added_p99 <= Duration::from_micros(300),
    );
    common::budget_row(
        "CONNECT tunnel bulk throughput",
        &format!("{bulk_sluice:.0} MB/s"),
        &format!("direct {bulk_direct:.0} MB/s"),
        &format!("{ratio:.2}x"),
        "≥ 0.8x",
        ratio >= 0.8,
    );
    common::budget_row(
        "resident memory, idle (after the load)",
        &format!("{:.1} MiB", rss_after as f64 / 1024.0),
        "—",
        "—",
        "≤ 16 MiB",
        rss_after <= 16 * 1024,
    );
    common::budget_row(
        "cold start, `serve` exec to `/readyz` 200",
        &format!("{:.2} ms", ms(start_median)),
        "—",
        "—",
        "≤ 5 ms",
        start_median <= Duration::from_millis(5),
    );
    println!(
        "  idle RSS: {:.1} MiB fresh, {:.1} MiB idle after load ({:.1} MiB heap and stacks, {:.1} MiB of the binary's pages)  budget <= 16 MiB  {}",
        rss_fresh as f64 / 1024.0,
        rss_after as f64 / 1024.0,
        anon_after as f64 / 1024.0,
        file_after as f64 / 1024.0,
        verdict(rss_after <= 16 * 1024)
    );
    println!(
        "  exec -> ready (/readyz 200), median of 20: {:.2} ms (min {:.2}, max {:.2})  budget <= 5 ms  {}",
        ms(start_median),
        ms(starts[0]),
        ms(starts[starts.len() - 1]),
        verdict(start_median <= Duration::from_millis(5))
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn rss_kib(pid: u32) -> Result<u64, Error> {
    status_kib(pid, "VmRSS:")
}

/// One `kB` line of /proc/PID/status (VmRSS, RssAnon, RssFile).
fn status_kib(pid: u32, key: &str) -> Result<u64, Error> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no {key} in /proc/{pid}/status").into())
}

struct Sluice {
    child: Child,
    proxy: SocketAddr,
    started: Duration,
}

impl Sluice {
    fn start(dir: &Path) -> Result<Self, Error> {
        let proxy: SocketAddr = format!("127.0.0.1:{}", common::free_port()).parse()?;
        let admin: SocketAddr = format!("127.0.0.1:{}", common::free_port()).parse()?;
        let cfg = dir.join("sluice.yaml");
        std::fs::write(
            &cfg,
            format!(
                "http:\n  listen: {proxy}\nadmin:\n  listen: {admin}\nlog:\n  level: warn\n{}",
                // `SLUICE_BENCH_WORKERS=N`: compare worker counts (the default is one per core).
                std::env::var("SLUICE_BENCH_WORKERS")
                    .map(|n| format!("runtime:\n  workers: {n}\n"))
                    .unwrap_or_default()
            ),
        )?;
        let t = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["serve", "-c"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let deadline = t + Duration::from_secs(30);
        loop {
            if readyz(admin) {
                return Ok(Self {
                    child,
                    proxy,
                    started: t.elapsed(),
                });
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err("sluice did not become ready".into());
            }
            // Poll often, but do not spin: on a small machine a busy poller steals the CPU
            // the starting process needs.
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn readyz(admin: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(admin) else {
        return false;
    };
    if s.write_all(b"GET /readyz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).is_ok() && &buf == b"HTTP/1.1 200"
}

struct Squid {
    child: Child,
    addr: SocketAddr,
}

impl Squid {
    /// squid with one allow rule equal to sluice's verdict here: destinations in 127.0.0.0/8.
    fn start(dir: &Path) -> Result<Self, Error> {
        let bin = ["/usr/sbin/squid", "/usr/bin/squid"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .ok_or("squid not installed (apt-get install -y squid)")?;
        let sq = dir.join("squid");
        std::fs::create_dir_all(&sq)?;
        let _ = Command::new("chmod").arg("777").arg(&sq).status();
        let addr: SocketAddr = format!("127.0.0.1:{}", common::free_port()).parse()?;
        let conf = sq.join("squid.conf");
        std::fs::write(
            &conf,
            format!(
                "http_port {addr}\nacl local_dst dst 127.0.0.0/8\nhttp_access allow local_dst\n\
                 http_access deny all\ncache deny all\naccess_log none\ncache_store_log none\n\
                 cache_log {log}\npid_filename {pid}\ncoredump_dir {dir}\nworkers 1\n\
                 shutdown_lifetime 0 seconds\nlogfile_rotate 0\n",
                log = sq.join("cache.log").display(),
                pid = sq.join("squid.pid").display(),
                dir = sq.display()
            ),
        )?;
        let mut child = Command::new(bin)
            .args(["-N", "-f"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(addr).is_err() {
            if Instant::now() > deadline || child.try_wait()?.is_some() {
                let _ = child.kill();
                let log = std::fs::read_to_string(sq.join("cache.log")).unwrap_or_default();
                return Err(
                    format!("squid did not start: {}", log.lines().last().unwrap_or("")).into(),
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self { child, addr })
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn small_upstream() -> Result<SocketAddr, Error> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let svc = service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                        Bytes::from_static(b"ok"),
                    )))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(addr)
}

/// Reads everything until EOF, then answers with the number of bytes it received.
async fn bulk_sink() -> Result<SocketAddr, Error> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 256 * 1024];
                let mut total: u64 = 0;
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    total += n as u64;
                }
                let _ = stream.write_all(&total.to_be_bytes()).await;
            });
        }
    });
    Ok(addr)
}

/// MB/s of an upload to the sink, directly or through a CONNECT tunnel; best of 3.
async fn bulk(sink: SocketAddr, proxy: Option<SocketAddr>) -> Result<f64, Error> {
    let chunk = vec![0x5au8; 256 * 1024];
    let mut best: f64 = 0.0;
    for _ in 0..3 {
        let mut s = match proxy {
            None => TcpStream::connect(sink).await?,
            Some(p) => {
                let mut s = TcpStream::connect(p).await?;
                s.write_all(format!("CONNECT {sink} HTTP/1.1\r\nHost: {sink}\r\n\r\n").as_bytes())
                    .await?;
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if s.read(&mut b).await? == 0 {
                        return Err("tunnel closed".into());
                    }
                    head.push(b[0]);
                }
                if !head.starts_with(b"HTTP/1.1 200") {
                    return Err(String::from_utf8_lossy(&head).into_owned().into());
                }
                s
            }
        };
        let t = Instant::now();
        let mut sent = 0;
        while sent < BULK_BYTES {
            s.write_all(&chunk).await?;
            sent += chunk.len();
        }
        s.shutdown().await?;
        // The sink's count proves every byte arrived (and that the half-close went through).
        let mut ack = [0u8; 8];
        s.read_exact(&mut ack).await?;
        if u64::from_be_bytes(ack) != sent as u64 {
            return Err(
                format!("sink received {} of {sent} bytes", u64::from_be_bytes(ack)).into(),
            );
        }
        best = best.max(sent as f64 / 1e6 / t.elapsed().as_secs_f64());
    }
    Ok(best)
}

struct Latencies {
    samples: Vec<Duration>,
    elapsed: Duration,
}

impl Latencies {
    fn pct(&self, p: f64) -> Duration {
        if self.samples.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.samples.len() as f64 * p) as usize).min(self.samples.len() - 1);
        self.samples[i]
    }
    fn rps(&self) -> f64 {
        self.samples.len() as f64 / self.elapsed.as_secs_f64()
    }
    fn print(&self, label: &str) {
        println!(
            "  {label:<20} {:>9.0} req/s   P50 {:>7.3} ms   P99 {:>7.3} ms   P999 {:>7.3} ms",
            self.rps(),
            ms(self.pct(0.5)),
            ms(self.pct(0.99)),
            ms(self.pct(0.999))
        );
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

async fn open(addr: SocketAddr) -> Result<Sender, Error> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

async fn one(sender: &mut Sender, target: &str) -> Result<(), Error> {
    sender.ready().await?;
    let req = hyper::Request::get(target)
        .header("host", "bench")
        .body(Empty::new())?;
    let resp = sender.send_request(req).await?;
    if resp.status() != 200 {
        return Err(format!("status {}", resp.status()).into());
    }
    resp.into_body().collect().await?;
    Ok(())
}

/// `CONCURRENCY` connections as fast as they go for `secs` (after a 1 s warm-up).
async fn closed_loop(addr: SocketAddr, target: String, secs: u64) -> Result<Latencies, Error> {
    let target = Arc::new(target);
    let warm_until = Instant::now() + Duration::from_secs(1);
    let stop = warm_until + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let mut sender = open(addr).await?;
            let mut lat = Vec::with_capacity(200_000);
            loop {
                let t = Instant::now();
                if t >= stop {
                    break;
                }
                one(&mut sender, &target).await?;
                if t >= warm_until {
                    lat.push(t.elapsed());
                }
            }
            Ok::<_, Error>(lat)
        }));
    }
    let mut samples = Vec::new();
    for t in tasks {
        samples.extend(t.await??);
    }
    samples.sort();
    Ok(Latencies {
        samples,
        elapsed: Duration::from_secs(secs),
    })
}

/// `rate` requests a second spread over 8 connections, each sent at its scheduled time.
async fn fixed_rate(
    addr: SocketAddr,
    target: String,
    rate: u64,
    secs: u64,
) -> Result<Latencies, Error> {
    const CONNS: u64 = 8;
    let target = Arc::new(target);
    let interval = Duration::from_nanos(1_000_000_000 * CONNS / rate);
    let begin = Instant::now() + Duration::from_millis(200);
    let n = rate * secs / CONNS;
    let mut tasks = Vec::new();
    for c in 0..CONNS {
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let mut sender = open(addr).await?;
            // Warm the path (pooled upstream connection, decision cache).
            one(&mut sender, &target).await?;
            let offset = interval * c as u32 / CONNS as u32;
            let mut lat = Vec::with_capacity(n as usize);
            for i in 0..n {
                let due = begin + offset + interval * i as u32;
                tokio::time::sleep_until(due.into()).await;
                // Timed from the actual send: tokio's timer wakes up to 1 ms late, and that
                // slop would swamp the microseconds under test.
                let t = Instant::now();
                one(&mut sender, &target).await?;
                lat.push(t.elapsed());
            }
            Ok::<_, Error>(lat)
        }));
    }
    let mut samples = Vec::new();
    for t in tasks {
        samples.extend(t.await??);
    }
    samples.sort();
    Ok(Latencies {
        samples,
        elapsed: Duration::from_secs(secs),
    })
}
