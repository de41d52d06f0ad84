//! The pod topology of the transparent-interception tests: three network namespaces built per
//! test and always deleted ("pod" with `sluice serve` as UID 65532 and clients as other UIDs,
//! "plant" as the pod's router with local services, "internet" behind it), packet counters in
//! the internet namespace, and servers and clients run inside a namespace from a thread.
//!
//! Addresses: pod 10.77.1.2 / fd00:77:1::2, plant 10.77.1.1 / fd00:77:1::1 (and 198.18.0.1 /
//! 2001:db8:77::1 towards the internet), internet 198.18.0.2 / 2001:db8:77::2. Nothing is
//! routed to the host. Needs root, ip, iptables, setpriv; tests skip with a message otherwise.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

pub use super::{Error, TestResult};

pub const POD: &str = "10.77.1.2";
pub const PLANT: &str = "10.77.1.1";
pub const PLANT6: &str = "fd00:77:1::1";
pub const INTERNET: &str = "198.18.0.2";
pub const INTERNET6: &str = "2001:db8:77::2";
/// The UID the processor's clients run as (anything but sluice's 65532).
pub const CLIENT_UID: &str = "1000";
pub const SLUICE_UID: &str = "65532";

/// True when the test can build namespaces; otherwise prints why it is skipped.
pub fn can_run(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let tools = ["ip", "iptables", "setpriv"].iter().all(|t| {
        Command::new(t)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    });
    if !(root && tools) {
        eprintln!("skipping {test}: needs root and ip, iptables, setpriv (network namespaces)");
    }
    root && tools
}

/// Runs a command, failing with its stderr when it does not succeed.
pub fn run(args: &[&str]) -> Result<String, Error> {
    let out = output(args)?;
    if !out.status.success() {
        return Err(format!(
            "{} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn output(args: &[&str]) -> Result<Output, Error> {
    let (program, rest) = args.split_first().ok_or("empty command")?;
    Ok(Command::new(program)
        .args(rest)
        .stdin(Stdio::null())
        .output()?)
}

/// The three namespaces of one test, deleted on drop (with everything in them).
pub struct Netns {
    pub pod: String,
    pub plant: String,
    pub internet: String,
    pub dir: PathBuf,
}

impl Netns {
    pub fn new(tag: &str) -> Result<Self, Error> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let id = format!(
            "{}{}",
            std::process::id() % 100_000,
            N.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(format!("sluice-intercept-{tag}-{id}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let ns = Self {
            pod: format!("slp{id}"),
            plant: format!("sll{id}"),
            internet: format!("sli{id}"),
            dir,
        };
        ns.build(&id)?;
        Ok(ns)
    }

    fn build(&self, id: &str) -> TestResult {
        for n in [&self.pod, &self.plant, &self.internet] {
            run(&["ip", "netns", "add", n])?;
            self.exec(n, &["ip", "link", "set", "lo", "up"])?;
        }
        let (pa, pb, ia, ib) = (
            format!("vp{id}"),
            format!("vl{id}"),
            format!("vm{id}"),
            format!("vi{id}"),
        );
        run(&[
            "ip",
            "link",
            "add",
            &pa,
            "netns",
            &self.pod,
            "type",
            "veth",
            "peer",
            "name",
            &pb,
            "netns",
            &self.plant,
        ])?;
        run(&[
            "ip",
            "link",
            "add",
            &ia,
            "netns",
            &self.plant,
            "type",
            "veth",
            "peer",
            "name",
            &ib,
            "netns",
            &self.internet,
        ])?;
        let addr = |ns: &str, dev: &str, a: &str| {
            self.exec(ns, &["ip", "addr", "add", a, "dev", dev, "nodad"])
        };
        addr(&self.pod, &pa, "10.77.1.2/24")?;
        addr(&self.pod, &pa, "fd00:77:1::2/64")?;
        addr(&self.plant, &pb, "10.77.1.1/24")?;
        addr(&self.plant, &pb, "fd00:77:1::1/64")?;
        addr(&self.plant, &ia, "198.18.0.1/24")?;
        addr(&self.plant, &ia, "2001:db8:77::1/64")?;
        addr(&self.internet, &ib, "198.18.0.2/24")?;
        addr(&self.internet, &ib, "2001:db8:77::2/64")?;
        for (ns, dev) in [
            (&self.pod, &pa),
            (&self.plant, &pb),
            (&self.plant, &ia),
            (&self.internet, &ib),
        ] {
            self.exec(ns, &["ip", "link", "set", dev, "up"])?;
        }
        self.exec(&self.pod, &["ip", "route", "add", "default", "via", PLANT])?;
        self.exec(
            &self.pod,
            &["ip", "-6", "route", "add", "default", "via", PLANT6],
        )?;
        self.exec(
            &self.internet,
            &["ip", "route", "add", "default", "via", "198.18.0.1"],
        )?;
        self.exec(
            &self.internet,
            &[
                "ip",
                "-6",
                "route",
                "add",
                "default",
                "via",
                "2001:db8:77::1",
            ],
        )?;
        self.exec(&self.plant, &["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
        self.exec(
            &self.plant,
            &["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"],
        )?;
        // Counters of everything that reaches the internet host (ICMPv6: echo only, since
        // neighbour discovery from the plant router is no traffic of the pod's).
        self.exec(&self.internet, &["iptables", "-A", "INPUT", "-d", INTERNET])?;
        self.exec(
            &self.internet,
            &[
                "ip6tables",
                "-A",
                "INPUT",
                "-d",
                INTERNET6,
                "!",
                "-p",
                "ipv6-icmp",
            ],
        )?;
        self.exec(
            &self.internet,
            &[
                "ip6tables",
                "-A",
                "INPUT",
                "-d",
                INTERNET6,
                "-p",
                "ipv6-icmp",
                "--icmpv6-type",
                "echo-request",
            ],
        )?;
        Ok(())
    }

    /// Runs a command inside namespace `ns` (as root).
    pub fn exec(&self, ns: &str, args: &[&str]) -> Result<String, Error> {
        let mut full = vec!["ip", "netns", "exec", ns];
        full.extend_from_slice(args);
        run(&full)
    }

    /// The same, as the processor's UID: a process with no privileges in the pod.
    pub fn client_output(&self, args: &[&str]) -> Result<Output, Error> {
        let mut full = vec![
            "ip",
            "netns",
            "exec",
            &self.pod,
            "setpriv",
            "--reuid",
            CLIENT_UID,
            "--regid",
            CLIENT_UID,
            "--clear-groups",
            "env",
            "-u",
            "http_proxy",
            "-u",
            "HTTP_PROXY",
            "-u",
            "https_proxy",
            "-u",
            "HTTPS_PROXY",
            "-u",
            "ALL_PROXY",
        ];
        full.extend_from_slice(args);
        output(&full)
    }

    /// Packets that reached the internet host so far.
    pub fn internet_packets(&self) -> Result<u64, Error> {
        let mut total = 0;
        for tool in ["iptables", "ip6tables"] {
            let listing = self.exec(&self.internet, &[tool, "-L", "INPUT", "-n", "-v", "-x"])?;
            for line in listing.lines().skip(2) {
                total += line
                    .split_whitespace()
                    .next()
                    .and_then(|p| p.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
        Ok(total)
    }

    pub fn zero_internet_counters(&self) -> TestResult {
        self.exec(&self.internet, &["iptables", "-Z", "INPUT"])?;
        self.exec(&self.internet, &["ip6tables", "-Z", "INPUT"])?;
        Ok(())
    }

    /// `sluice iptables -c CONFIG --apply` in the pod, as the init container would.
    pub fn apply_rules(&self, config: &Path) -> TestResult {
        let cfg = config.to_string_lossy();
        self.exec(
            &self.pod,
            &[
                env!("CARGO_BIN_EXE_sluice"),
                "iptables",
                "-c",
                &cfg,
                "--apply",
            ],
        )?;
        Ok(())
    }

    /// Writes a file in the test's directory (readable by sluice's UID).
    pub fn write(&self, name: &str, text: &str) -> Result<PathBuf, Error> {
        let path = self.dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text)?;
        Ok(path)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for n in [&self.pod, &self.plant, &self.internet] {
            let _ = output(&["ip", "netns", "del", n]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `f` on a thread that has entered namespace `ns`; sockets it creates live there.
pub fn in_ns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Error> {
    let path = format!("/run/netns/{ns}");
    let handle = std::thread::spawn(move || -> Result<T, String> {
        enter(&path)?;
        Ok(f())
    });
    handle
        .join()
        .map_err(|_| "namespace thread panicked")?
        .map_err(Error::from)
}

/// Starts `f` on a thread inside `ns` and leaves it running (servers).
pub fn spawn_in_ns(ns: &str, f: impl FnOnce() + Send + 'static) -> TestResult {
    let path = format!("/run/netns/{ns}");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || match enter(&path) {
        Ok(()) => {
            let _ = tx.send(Ok(()));
            f();
        }
        Err(e) => {
            let _ = tx.send(Err(e));
        }
    });
    rx.recv_timeout(Duration::from_secs(5))?
        .map_err(Error::from)
}

fn enter(path: &str) -> Result<(), String> {
    let file = File::open(path).map_err(|e| format!("{path}: {e}"))?;
    // SAFETY: setns on a namespace file we hold open; affects this thread only.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(format!("setns {path}: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// A TCP server in `ns` on `addr`: counts bytes received, answers `greeting` to each
/// connection (first, for a server-first protocol; else after the first bytes arrive).
pub fn tcp_server(
    ns: &str,
    addr: SocketAddr,
    greeting: &'static [u8],
    server_first: bool,
) -> Result<Arc<AtomicU64>, Error> {
    let received = Arc::new(AtomicU64::new(0));
    let count = received.clone();
    let (tx, rx) = mpsc::channel();
    spawn_in_ns(ns, move || {
        let listener = match TcpListener::bind(addr) {
            Ok(l) => {
                let _ = tx.send(Ok(()));
                l
            }
            Err(e) => {
                let _ = tx.send(Err(e.to_string()));
                return;
            }
        };
        for stream in listener.incoming().flatten() {
            let count = count.clone();
            std::thread::spawn(move || serve_tcp(stream, greeting, server_first, &count));
        }
    })?;
    rx.recv_timeout(Duration::from_secs(5))?
        .map_err(Error::from)?;
    Ok(received)
}

fn serve_tcp(mut s: TcpStream, greeting: &[u8], server_first: bool, count: &AtomicU64) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    if server_first {
        let _ = s.write_all(greeting);
    }
    let mut buf = [0u8; 16384];
    let mut answered = server_first;
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        count.fetch_add(n as u64, Ordering::Relaxed);
        if !answered {
            answered = true;
            let _ = s.write_all(greeting);
        }
    }
}

/// A running process killed on drop (sluice, mosquitto).
pub struct Proc {
    pub child: Child,
    pub log: Arc<std::sync::Mutex<String>>,
}

impl Proc {
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `sluice serve -c CONFIG` in the pod as UID 65532, once it logs that it is serving.
pub fn start_sluice(ns: &Netns, config: &Path) -> Result<Proc, Error> {
    let cfg = config.to_string_lossy().into_owned();
    let mut child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.pod,
            "setpriv",
            "--reuid",
            SLUICE_UID,
            "--regid",
            SLUICE_UID,
            "--clear-groups",
        ])
        .args([env!("CARGO_BIN_EXE_sluice"), "serve", "-c", &cfg])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let log = Arc::new(std::sync::Mutex::new(String::new()));
    let (tx, rx) = mpsc::channel();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("sluice serving") {
                let _ = tx.send(());
            }
            if let Ok(mut l) = sink.lock() {
                l.push_str(&line);
                l.push('\n');
            }
        }
    });
    let mut proc = Proc { child, log };
    if rx.recv_timeout(Duration::from_secs(30)).is_err() {
        let log = proc.log.lock().map(|l| l.clone()).unwrap_or_default();
        proc.kill();
        return Err(format!("sluice did not start:\n{log}").into());
    }
    Ok(proc)
}

/// mosquitto in the plant namespace on 10.77.1.1:1883, once it accepts connections.
pub fn start_mosquitto(ns: &Netns) -> Result<Proc, Error> {
    let conf = ns.write(
        "mosquitto.conf",
        &format!("listener 1883 {PLANT}\nallow_anonymous true\n"),
    )?;
    let child = Command::new("ip")
        .args(["netns", "exec", &ns.plant, "/usr/sbin/mosquitto", "-c"])
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let proc = Proc {
        child,
        log: Default::default(),
    };
    let target: SocketAddr = format!("{PLANT}:1883").parse()?;
    let up = poll_until(Duration::from_secs(10), || {
        in_ns(&ns.plant, move || {
            TcpStream::connect_timeout(&target, Duration::from_millis(200)).is_ok()
        })
        .unwrap_or(false)
    });
    if !up {
        return Err("mosquitto did not start".into());
    }
    Ok(proc)
}

/// Polls `f` until it holds or `limit` passes; whether it held.
pub fn poll_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    f()
}

/// The sluice config of these tests: the plant's networks and `*.plant.local` are the site,
/// the shipped egress policy with `allowlist` as its data, interception on, DNS forwarded to
/// the plant's resolver.
pub fn sluice_config(ns: &Netns, allowlist: &str) -> Result<PathBuf, Error> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/manufacturing");
    // Data files sit in their package's directory (data.manufacturing.export_allowlist).
    let package = ns.dir.join("policy/manufacturing");
    std::fs::create_dir_all(&package)?;
    for f in ["smart.rego", "egress.rego"] {
        std::fs::copy(root.join(f), package.join(f))?;
    }
    ns.write(
        "policy/manufacturing/data.json",
        &format!("{{\"export_allowlist\": {allowlist}}}"),
    )?;
    let policy = ns.dir.join("policy");
    ns.write(
        "sluice.yaml",
        &format!(
            "site:\n  name: test-plant\n  local_networks: [127.0.0.0/8, 10.77.0.0/16, \"::1/128\", \"fd00:77::/32\"]\n  local_domains: [localhost, \"*.plant.local\"]\npolicy:\n  paths: [{}]\n  decision: data.manufacturing.egress\nhttp:\n  listen: 127.0.0.1:3128\nadmin:\n  listen: 127.0.0.1:9901\nintercept:\n  sniff_timeout: 200ms\n  dns:\n    upstream: [\"{PLANT}:53\"]\n",
            policy.display()
        ),
    )
}

/// GET of sluice's /metrics, from inside the pod (loopback is exempt from the rules).
pub fn metrics(ns: &Netns) -> Result<String, Error> {
    let text = in_ns(&ns.pod, || -> Result<String, String> {
        let mut s = TcpStream::connect("127.0.0.1:9901").map_err(|e| e.to_string())?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .map_err(|e| e.to_string())?;
        let mut body = String::new();
        s.read_to_string(&mut body).map_err(|e| e.to_string())?;
        Ok(body)
    })??;
    Ok(text)
}

/// The value of one metric line that starts with `prefix` (0 when absent).
pub fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Connects from the pod (as root, which the rules treat as any processor UID), sends
/// `payload`, and returns what came back before the connection ended (or an error).
pub fn pod_tcp(
    ns: &Netns,
    to: SocketAddr,
    payload: Vec<u8>,
) -> Result<std::io::Result<Vec<u8>>, Error> {
    in_ns(&ns.pod, move || -> std::io::Result<Vec<u8>> {
        let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(3))?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        s.write_all(&payload)?;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e)
                    if got.is_empty()
                        && e.kind() != std::io::ErrorKind::WouldBlock
                        && e.kind() != std::io::ErrorKind::TimedOut =>
                {
                    return Err(e);
                }
                Err(_) => break,
            }
        }
        Ok(got)
    })
}

/// One UDP datagram from the pod to `to`; the answer if one comes within a second.
pub fn pod_udp(ns: &Netns, to: SocketAddr, payload: Vec<u8>) -> Result<Option<Vec<u8>>, Error> {
    in_ns(&ns.pod, move || -> Option<Vec<u8>> {
        let any: SocketAddr = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
            .parse()
            .ok()?;
        let s = UdpSocket::bind(any).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        s.send_to(&payload, to).ok()?;
        let mut buf = vec![0u8; 65535];
        let (n, _) = s.recv_from(&mut buf).ok()?;
        buf.truncate(n);
        Some(buf)
    })
}

/// An ICMP echo request with `payload` from the pod (a raw socket: as root).
pub fn pod_ping(ns: &Netns, to: IpAddr, payload: &'static [u8]) -> TestResult {
    in_ns(&ns.pod, move || {
        let (domain, proto, kind) = match to {
            IpAddr::V4(_) => (libc::AF_INET, libc::IPPROTO_ICMP, 8u8),
            IpAddr::V6(_) => (libc::AF_INET6, libc::IPPROTO_ICMPV6, 128u8),
        };
        let mut packet = vec![kind, 0, 0, 0, 0x12, 0x34, 0, 1];
        packet.extend_from_slice(payload);
        if to.is_ipv4() {
            let sum = checksum(&packet);
            packet[2..4].copy_from_slice(&sum.to_be_bytes());
        }
        let sock: socket_addr::Raw = socket_addr::Raw::of(to);
        // SAFETY: plain socket calls on a descriptor we own and close.
        unsafe {
            let fd = libc::socket(domain, libc::SOCK_RAW, proto);
            if fd < 0 {
                return;
            }
            let _ = libc::sendto(
                fd,
                packet.as_ptr().cast(),
                packet.len(),
                0,
                sock.ptr(),
                sock.len(),
            );
            libc::close(fd);
        }
    })?;
    Ok(())
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

mod socket_addr {
    use std::net::IpAddr;

    /// A sockaddr for sendto.
    pub enum Raw {
        V4(libc::sockaddr_in),
        V6(libc::sockaddr_in6),
    }

    impl Raw {
        pub fn of(ip: IpAddr) -> Self {
            match ip {
                IpAddr::V4(v4) => {
                    // SAFETY: zeroed sockaddr_in is valid.
                    let mut a: libc::sockaddr_in = unsafe { std::mem::zeroed() };
                    a.sin_family = libc::AF_INET as libc::sa_family_t;
                    a.sin_addr.s_addr = u32::from(v4).to_be();
                    Self::V4(a)
                }
                IpAddr::V6(v6) => {
                    // SAFETY: zeroed sockaddr_in6 is valid.
                    let mut a: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
                    a.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                    a.sin6_addr.s6_addr = v6.octets();
                    Self::V6(a)
                }
            }
        }
        pub fn ptr(&self) -> *const libc::sockaddr {
            match self {
                Self::V4(a) => (a as *const libc::sockaddr_in).cast(),
                Self::V6(a) => (a as *const libc::sockaddr_in6).cast(),
            }
        }
        pub fn len(&self) -> libc::socklen_t {
            (match self {
                Self::V4(_) => size_of::<libc::sockaddr_in>(),
                Self::V6(_) => size_of::<libc::sockaddr_in6>(),
            }) as libc::socklen_t
        }
    }
}

/// A DNS query for `name` (type A), built with hickory-proto.
pub fn dns_query(id: u16, name: &str) -> Result<Vec<u8>, Error> {
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::{Name, RecordType};
    let mut m = Message::new();
    m.set_id(id).set_recursion_desired(true);
    m.add_query(Query::query(Name::from_ascii(name)?, RecordType::A));
    Ok(m.to_vec()?)
}

/// The response code and A addresses of a DNS answer.
pub fn dns_answer(bytes: &[u8]) -> Result<(String, Vec<IpAddr>), Error> {
    use hickory_proto::op::Message;
    use hickory_proto::rr::RData;
    let m = Message::from_vec(bytes)?;
    let ips = m
        .answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        })
        .collect();
    Ok((format!("{:?}", m.response_code()), ips))
}

/// A resolver on `addr` in `ns`: answers `*.plant.local` names from `local` and forwards
/// every other query to `forward_to` (as kube-dns does); counts the queries it received.
pub fn resolver(
    ns: &str,
    addr: SocketAddr,
    local: &'static [(&'static str, &'static str)],
    forward_to: Option<SocketAddr>,
) -> Result<Arc<AtomicU64>, Error> {
    let received = Arc::new(AtomicU64::new(0));
    let count = received.clone();
    let (tx, rx) = mpsc::channel();
    spawn_in_ns(ns, move || {
        let sock = match UdpSocket::bind(addr) {
            Ok(s) => {
                let _ = tx.send(Ok(()));
                s
            }
            Err(e) => {
                let _ = tx.send(Err(e.to_string()));
                return;
            }
        };
        let mut buf = vec![0u8; 4096];
        while let Ok((n, peer)) = sock.recv_from(&mut buf) {
            count.fetch_add(1, Ordering::Relaxed);
            if let Some(reply) = resolve(&buf[..n], local, forward_to) {
                let _ = sock.send_to(&reply, peer);
            }
        }
    })?;
    rx.recv_timeout(Duration::from_secs(5))?
        .map_err(Error::from)?;
    Ok(received)
}

fn resolve(
    query: &[u8],
    local: &[(&str, &str)],
    forward_to: Option<SocketAddr>,
) -> Option<Vec<u8>> {
    use hickory_proto::op::{Message, MessageType, ResponseCode};
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{RData, Record};
    let req = Message::from_vec(query).ok()?;
    let q = req.queries().first()?.clone();
    let name = q
        .name()
        .to_ascii()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let mut reply = Message::new();
    reply
        .set_id(req.id())
        .set_message_type(MessageType::Response)
        .set_recursion_available(true);
    reply.add_query(q.clone());
    if let Some((_, ip)) = local.iter().find(|(n, _)| *n == name) {
        let ip: std::net::Ipv4Addr = ip.parse().ok()?;
        reply.add_answer(Record::from_rdata(q.name().clone(), 60, RData::A(A(ip))));
        return reply.to_vec().ok();
    }
    let Some(upstream) = forward_to else {
        reply.set_response_code(ResponseCode::NXDomain);
        return reply.to_vec().ok();
    };
    let s = UdpSocket::bind("0.0.0.0:0").ok()?;
    s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    s.send_to(query, upstream).ok()?;
    let mut buf = vec![0u8; 4096];
    let (n, _) = s.recv_from(&mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// The first line a server-first service sends to a client from the pod.
pub fn pod_banner(ns: &Netns, to: SocketAddr) -> Result<String, Error> {
    let line = in_ns(&ns.pod, move || -> std::io::Result<String> {
        let s = TcpStream::connect_timeout(&to, Duration::from_secs(3))?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line)?;
        Ok(line.trim_end().to_string())
    })??;
    Ok(line)
}

/// `openssl s_server -www` in the plant on 10.77.1.1:8443, with a fresh self-signed
/// certificate for historian.plant.local.
pub fn start_tls_server(ns: &Netns) -> Result<Proc, Error> {
    let key = ns.dir.join("tls.key");
    let cert = ns.dir.join("tls.crt");
    let (k, c) = (
        key.to_string_lossy().into_owned(),
        cert.to_string_lossy().into_owned(),
    );
    run(&[
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=historian.plant.local",
        "-keyout",
        &k,
        "-out",
        &c,
    ])?;
    let child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.plant,
            "openssl",
            "s_server",
            "-accept",
            "10.77.1.1:8443",
            "-www",
            "-key",
            &k,
            "-cert",
            &c,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let proc = Proc {
        child,
        log: Default::default(),
    };
    let target: SocketAddr = "10.77.1.1:8443".parse()?;
    let up = poll_until(Duration::from_secs(10), || {
        in_ns(&ns.plant, move || {
            TcpStream::connect_timeout(&target, Duration::from_millis(200)).is_ok()
        })
        .unwrap_or(false)
    });
    if !up {
        return Err("openssl s_server did not start".into());
    }
    Ok(proc)
}
