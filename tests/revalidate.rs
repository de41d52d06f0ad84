//! Live flows follow the policy: a CONNECT tunnel and MQTT sessions opened under one policy
//! generation are judged again when a newer one is in force (a watched policy directory is
//! rewritten), and the ones it denies end the way their protocol allows — the tunnel closed,
//! MQTT 5 told DISCONNECT 0x87, MQTT 3.1.1 closed — while flows it still allows keep moving.
//! With `policy.revalidate: false`, flows keep their first decision.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;

use support::mqtt::{Broker, Raw, Watcher, connect_packet, frame, publish_packet};
use support::*;

const POLICY: &str = r#"package revalidate

import rego.v1

default allow := false

allow if {
	input.data_stays_local
	not blocked
}

blocked if input.target.port in data.gate.ports

blocked if input.mqtt.topic in data.gate.topics

blocked if input.source.client_id in data.gate.clients

deny contains "closed by the gate" if blocked
"#;

/// A watched policy directory whose gate blocks `gate` (ports, topics, client ids).
fn write_gate(dir: &std::path::Path, gate: serde_json::Value) {
    let _ = std::fs::create_dir_all(dir.join("gate"));
    std::fs::write(dir.join("revalidate.rego"), POLICY).unwrap_or_else(|e| panic!("{e}"));
    // Written whole, then renamed: the watcher never sees half a document.
    let tmp = dir.join("gate/.data.json.tmp");
    std::fs::write(&tmp, gate.to_string()).unwrap_or_else(|e| panic!("{e}"));
    std::fs::rename(&tmp, dir.join("gate/data.json")).unwrap_or_else(|e| panic!("{e}"));
}

fn open_gate() -> serde_json::Value {
    serde_json::json!({"ports": [], "topics": [], "clients": []})
}

fn policy_section(dir: &std::path::Path, revalidate: bool) -> String {
    format!(
        "policy:\n  paths: [{}]\n  decision: data.revalidate\n  watch: true\n  eval_timeout: 5s\n  revalidate: {revalidate}\n",
        dir.display()
    )
}

#[test]
fn a_tunnel_the_new_policy_denies_is_closed_and_the_others_keep_flowing() {
    let dir = TempDir::new("revalidate-tunnel");
    let policies = dir.join("policies");
    write_gate(&policies, open_gate());
    let (blocked, kept) = (echo_server(), echo_server());
    let sluice = Sluice::start(&policy_section(&policies, true));
    let mut doomed = tunnel(sluice.proxy(), blocked);
    let mut survivor = tunnel(sluice.proxy(), kept);
    assert!(echoes(&mut doomed, b"before the change"));
    assert!(echoes(&mut survivor, b"before the change"));

    write_gate(
        &policies,
        serde_json::json!({"ports": [blocked.port()], "topics": [], "clients": []}),
    );
    sluice.wait_metric("sluice_flows_revoked_total{protocol=\"https\"}", 1.0);
    assert!(closed(&mut doomed), "the denied tunnel is still open");
    assert!(echoes(&mut survivor, b"after the change"));
    assert_eq!(
        sluice.metric("sluice_flows_revoked_total{protocol=\"https\"}"),
        1.0
    );
    let logs = sluice.logs();
    assert!(
        logs.contains("open flow ended: the policy now in force denies it"),
        "{logs}"
    );
    // The revocation is a deny like any other: counted with its reason and decision id.
    assert!(logs.contains("closed by the gate"), "{logs}");
    // And a new tunnel to the blocked port is refused outright.
    let mut s = TcpStream::connect(sluice.proxy()).unwrap_or_else(|e| panic!("{e}"));
    let _ = s.set_read_timeout(Some(WAIT));
    let req = format!("CONNECT {blocked} HTTP/1.1\r\nHost: {blocked}\r\n\r\n");
    s.write_all(req.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(&head, b"HTTP/1.1 403");
}

#[test]
fn with_revalidate_off_an_open_tunnel_keeps_its_first_decision() {
    let dir = TempDir::new("revalidate-off");
    let policies = dir.join("policies");
    write_gate(&policies, open_gate());
    let target = echo_server();
    let sluice = Sluice::start(&policy_section(&policies, false));
    let mut open = tunnel(sluice.proxy(), target);
    assert!(echoes(&mut open, b"before the change"));
    write_gate(
        &policies,
        serde_json::json!({"ports": [target.port()], "topics": [], "clients": []}),
    );
    sluice.wait_metric("sluice_policy_reloads_total{result=\"success\"}", 1.0);
    assert!(echoes(&mut open, b"after the change"));
    assert_eq!(
        sluice.metric("sluice_flows_revoked_total{protocol=\"https\"}"),
        0.0
    );
}

/// A clean-start CONNECT with a Will (QoS 0, not retained) on `will_topic`.
fn connect_with_will(level: u8, client_id: &str, will_topic: &str) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', level, 0x02 | 0x04, 0, 60];
    if level == 5 {
        body.push(0);
    }
    body.extend_from_slice(&(client_id.len() as u16).to_be_bytes());
    body.extend_from_slice(client_id.as_bytes());
    if level == 5 {
        body.push(0);
    }
    body.extend_from_slice(&(will_topic.len() as u16).to_be_bytes());
    body.extend_from_slice(will_topic.as_bytes());
    body.extend_from_slice(&4u16.to_be_bytes());
    body.extend_from_slice(b"gone");
    frame(0x10, &body)
}

/// A SUBSCRIBE of one filter at QoS 1.
fn subscribe_packet(level: u8, id: u16, filter: &str) -> Vec<u8> {
    let mut body = id.to_be_bytes().to_vec();
    if level == 5 {
        body.push(0);
    }
    body.extend_from_slice(&(filter.len() as u16).to_be_bytes());
    body.extend_from_slice(filter.as_bytes());
    body.push(1);
    frame(0x82, &body)
}

/// Reads CONNACK and checks it accepted the session.
fn connected(raw: &mut Raw) {
    let ack = raw.read_packet();
    assert_eq!(ack[0], 0x20, "{ack:?}");
    assert_eq!(ack[3], 0, "CONNACK refused: {ack:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_sessions_the_new_policy_denies_end_as_their_protocol_allows() {
    let dir = TempDir::new("revalidate-mqtt");
    let policies = dir.join("policies");
    write_gate(&policies, open_gate());
    let broker = Broker::start();
    let config = support::mqtt::config_with(
        &[(broker.addr.to_string(), "")],
        &format!("{TEST_SITE}{}", policy_section(&policies, true)),
    );
    let sluice = tokio::task::block_in_place(|| Sluice::serve(&config));
    let watcher = Watcher::start(broker.addr, &["plant/#"]).await;

    // MQTT 5, subscribed to what the new policy will deny, with a Will.
    let mut v5 = Raw::connect(sluice.addr());
    v5.send(&connect_with_will(5, "reader-5", "plant/will"));
    connected(&mut v5);
    v5.send(&subscribe_packet(5, 1, "plant/a/#"));
    let suback = v5.read_packet();
    assert_eq!((suback[0], suback.last()), (0x90, Some(&1)), "{suback:?}");
    // MQTT 3.1.1, a client id the new policy will block.
    let mut v3 = Raw::connect(sluice.addr());
    v3.send(&connect_packet(4, "line-7"));
    connected(&mut v3);
    // A session the new policy still allows.
    let mut kept = Raw::connect(sluice.addr());
    kept.send(&connect_packet(4, "line-8"));
    connected(&mut kept);

    write_gate(
        &policies,
        serde_json::json!({"ports": [], "topics": ["plant/a/#"], "clients": ["line-7"]}),
    );
    tokio::task::block_in_place(|| {
        sluice.wait_metric("sluice_flows_revoked_total{protocol=\"mqtt\"}", 2.0)
    });
    // MQTT 5 is told why (DISCONNECT, Not authorized), then closed; 3.1.1 is closed.
    assert_eq!(v5.read_to_close(), vec![0xE0, 2, 0x87, 0]);
    assert_eq!(v3.read_to_close(), Vec::<u8>::new());

    // The session it still allows keeps flowing.
    kept.send(&publish_packet(b"plant/b/ok", None, None, b"still here"));
    watcher.wait_for("plant/b/ok", 1).await;
    // The ended session's Will was discarded (sluice disconnected it cleanly from the
    // broker): a marker published after the end arrives, and no Will before it.
    let mut marker = Raw::connect(broker.addr);
    marker.send(&connect_packet(4, "marker"));
    connected(&mut marker);
    marker.send(&publish_packet(b"plant/marker", None, None, b"after"));
    watcher.wait_for("plant/marker", 1).await;
    assert_eq!(watcher.count("plant/will"), 0, "{:?}", watcher.topics());
    assert_eq!(
        sluice.metric("sluice_flows_revoked_total{protocol=\"mqtt\"}"),
        2.0
    );
}
