//! The export bridge's credentials and TLS: a plant broker that wants a password and a cloud
//! broker that wants TLS with a client certificate and a password get every allowed message,
//! and no password is ever in sluice's log; TLS failures (an untrusted certificate, garbage
//! on the port, a peer that hangs up in the handshake) and a wrong password are each one log
//! line and a metric while the messages stay in the spool, and the other bridge of the same
//! gateway keeps delivering.
//!
//! Needs /usr/sbin/mosquitto and mosquitto_passwd.

mod bridge_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};

use bridge_support::pki::Pki;
use bridge_support::*;

const ALLOWED: &str = "plant/line1/aggregates/hourly";
const LOCAL_PW: &str = "local-pw-5f3a9c";
const REMOTE_PW: &str = "remote-pw-8d21e7";
const WRONG_PW: &str = "wrong-pw-c0ffee";

/// The cloud: a plain listener for the watcher and a TLS listener that requires a client
/// certificate; every client needs a password.
fn tls_cloud(pki: &Pki) -> (Broker, SocketAddr) {
    let tls_port = free_port("127.0.0.2");
    let cloud = Broker::new("127.0.0.2", &pki.listener(tls_port));
    cloud.gate();
    cloud.add_user("sluice", REMOTE_PW);
    (cloud, SocketAddr::from(([127, 0, 0, 2], tls_port)))
}

fn assert_no_password(sluice: &Sluice) {
    let logs = sluice.logs();
    for pw in [LOCAL_PW, REMOTE_PW, WRONG_PW] {
        assert!(!logs.contains(pw), "a password is in the log:\n{logs}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_with_passwords_and_a_client_certificate_delivers_and_never_logs_a_password() {
    let dir = Dir::new("tls-ok");
    let pki = Pki::new();
    let mut plant = Broker::new("127.0.0.1", "");
    plant.gate();
    plant.add_user("bridge", LOCAL_PW);
    plant.start();
    let (mut cloud, tls_addr) = tls_cloud(&pki);
    cloud.start();
    let arrivals = cloud_subscriber(cloud.addr).await;
    write_policy(&dir, "127.0.0.2", &["plant/+/aggregates/#"]);
    let pw_file = dir.file("local-password", &format!("{LOCAL_PW}\n"));
    let bridge = format!(
        "name: cloud\nlocal: {{broker: {}, username: bridge, password_file: {}}}\nremote: {{broker: {tls_addr}, username: sluice, password: {REMOTE_PW}, tls: {{ca: {}, cert: {}, key: {}}}}}\ntopics: [\"plant/#\"]\nspool: {{path: {}}}\n",
        plant.addr,
        pw_file.display(),
        pki.path("ca.pem"),
        pki.path("client.pem"),
        pki.path("client.key"),
        dir.path("cloud.db").display(),
    );
    let (cfg, admin) = bridges_config(&dir, &[bridge], "log: {level: debug}");
    let sluice = Sluice::start(&dir, &cfg, admin);
    sluice.wait_bridge("uplink_up", 1.0);
    sluice.wait_bridge("local_up", 1.0);

    let mut msgs = messages(ALLOWED, "a-", 50);
    msgs.extend(messages("plant/line1/raw/temp", "r-", 50));
    publish_all_as(plant.addr, Some(WATCHER), msgs).await;
    arrivals.wait_or("a-", 50, || sluice.logs());
    sluice.wait_bridge("denied_total", 50.0);
    sluice.wait_spool_empty();
    assert_eq!(
        arrivals.count("r-"),
        0,
        "a denied message reached the cloud"
    );
    assert_no_password(&sluice);
    cloud.stop();
    plant.stop();
}

/// A TCP server on 127.0.0.2 that answers every connection with `reply` and then hangs up.
fn fake_server(reply: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.2:0").unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    std::thread::spawn(move || {
        for mut conn in listener.incoming().map_while(Result::ok) {
            let mut buf = [0u8; 512];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(reply);
        }
    });
    addr
}

fn uplink_lines(sluice: &Sluice, bridge: &str) -> Vec<String> {
    let tag = format!("bridge={bridge} ");
    sluice
        .logs()
        .lines()
        .filter(|l| l.contains("uplink down") && l.contains(&tag))
        .map(String::from)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_failures_are_one_line_and_a_metric_and_the_other_bridge_keeps_delivering() {
    let dir = Dir::new("tls-bad");
    let pki = Pki::new();
    let plant = Broker::started("127.0.0.1", "");
    let (mut cloud, tls_addr) = tls_cloud(&pki);
    cloud.add_user("plain", "plain-pw");
    cloud.start();
    let arrivals = cloud_subscriber(cloud.addr).await;
    write_policy(&dir, "127.0.0.2", &["plant/+/aggregates/#"]);
    let garbage = fake_server(b"HTTP/1.1 400 Bad Request\r\n\r\nthis is not TLS\r\n");
    let hangs_up = fake_server(b"");
    let spool = |name: &str| dir.path(&format!("{name}.db")).display().to_string();
    let tls = |ca: &str| {
        format!(
            "tls: {{ca: {}, cert: {}, key: {}}}",
            pki.path(ca),
            pki.path("client.pem"),
            pki.path("client.key")
        )
    };
    let bridge = |name: &str, remote: String| {
        format!(
            "name: {name}\nlocal: {{broker: {}}}\nremote: {{{remote}}}\ntopics: [\"plant/#\"]\nspool: {{path: {}}}\n",
            plant.addr,
            spool(name)
        )
    };
    let login = format!("username: sluice, password: {REMOTE_PW}");
    let bridges = [
        bridge(
            "untrusted",
            format!("broker: {tls_addr}, {login}, {}", tls("other-ca.pem")),
        ),
        bridge(
            "garbage",
            format!("broker: {garbage}, {login}, {}", tls("ca.pem")),
        ),
        bridge(
            "hangsup",
            format!("broker: {hangs_up}, {login}, {}", tls("ca.pem")),
        ),
        bridge(
            "badpw",
            format!(
                "broker: {tls_addr}, username: sluice, password: {WRONG_PW}, {}",
                tls("ca.pem")
            ),
        ),
        bridge(
            "plain",
            format!(
                "broker: {}, username: plain, password: plain-pw",
                cloud.addr
            ),
        ),
    ];
    let (cfg, admin) = bridges_config(&dir, &bridges, "");
    let sluice = Sluice::start(&dir, &cfg, admin);
    sluice.wait_bridge_of("plain", "uplink_up", 1.0);

    publish_all(plant.addr, messages(ALLOWED, "a-", 20)).await;
    arrivals.wait_or("a-", 20, || sluice.logs());
    sluice.wait_bridge_of("plain", "sent_total", 20.0);
    for name in ["untrusted", "garbage", "hangsup"] {
        // Several attempts, still one line: a failure is logged when it changes.
        sluice.wait_bridge_of(name, "errors_total{kind=\"tls\"}", 3.0);
        sluice.wait_bridge_of(name, "spooled_total", 20.0);
        assert_eq!(sluice.bridge_of(name, "spool_messages"), 20.0, "{name}");
        assert_eq!(sluice.bridge_of(name, "sent_total"), 0.0, "{name}");
        assert_eq!(sluice.bridge_of(name, "uplink_up"), 0.0, "{name}");
        let lines = uplink_lines(&sluice, name);
        assert_eq!(lines.len(), 1, "{name}: {lines:?}");
        assert!(lines[0].contains("kind=\"tls\""), "{name}: {lines:?}");
    }
    let untrusted = uplink_lines(&sluice, "untrusted");
    assert!(
        untrusted[0].contains("UnknownIssuer"),
        "the reason is named: {untrusted:?}"
    );
    sluice.wait_bridge_of("badpw", "errors_total{kind=\"connect_refused\"}", 2.0);
    assert_eq!(uplink_lines(&sluice, "badpw").len(), 1, "{}", sluice.logs());
    assert_eq!(sluice.bridge_of("badpw", "spool_messages"), 20.0);
    assert!(sluice.metrics().contains("sluice_ready 1"));
    assert_eq!(arrivals.count("a-"), 20);
    assert_eq!(arrivals.duplicates(), 0, "only the plain bridge delivered");
    assert_no_password(&sluice);
    cloud.stop();
}
