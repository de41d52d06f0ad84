//! The MQTT gateway between real clients (mosquitto_pub, rumqttc v4 and v5) and a real
//! mosquitto broker: what is allowed arrives, what is denied never reaches the broker, and each
//! protocol version is told the way it can understand.
//!
//! Needs mosquitto and mosquitto-clients.

mod support;

use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{Packet as P5, PubAckReason, PubRecReason};
use rumqttc::v5::mqttbytes::{QoS as Q5, v5::SubscribeReasonCode as S5};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeReasonCode};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_pub_allowed_topics_arrive_and_denied_ones_never_reach_the_broker() {
    let broker = Broker::start();
    let sluice = sluice_for(&broker, "");
    let watcher = Watcher::start(broker.addr, &["#"]).await;
    let addr = sluice.addr();
    for version in ["mqttv311", "mqttv5"] {
        for qos in ["0", "1", "2"] {
            let out = mosquitto_pub(
                addr,
                &[
                    "-V",
                    version,
                    "-q",
                    qos,
                    "-t",
                    "plant/line1/temp",
                    "-m",
                    "21.5",
                ],
            );
            assert!(out.status.success(), "{version} q{qos}: {}", text(&out));
            for _ in 0..10 {
                let out = mosquitto_pub(
                    addr,
                    &["-V", version, "-q", qos, "-t", "secret/recipe", "-m", "x"],
                );
                assert!(!text(&out).contains("Connection Refused"), "{}", text(&out));
            }
        }
    }
    // Order is kept per connection, so once the marker is in, anything leaked would be too.
    let out = mosquitto_pub(addr, &["-t", "plant/marker", "-m", "end"]);
    assert!(out.status.success(), "{}", text(&out));
    watcher.wait_for("plant/marker", 1).await;
    assert_eq!(watcher.count("plant/line1/temp"), 6);
    assert_eq!(watcher.count("secret/recipe"), 0);
    assert_eq!(watcher.payloads("plant/line1/temp")[0], b"21.5");
    assert_eq!(
        sluice.metric(
            "sluice_decisions_total{protocol=\"mqtt\",operation=\"publish\",verdict=\"deny\"}"
        ),
        60.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt5_clients_see_not_authorized_on_puback_and_pubrec() {
    let broker = Broker::start();
    let sluice = sluice_for(&broker, "");
    let addr = sluice.addr();
    let out = mosquitto_pub(
        addr,
        &[
            "-V",
            "mqttv5",
            "-d",
            "-q",
            "1",
            "-t",
            "secret/recipe",
            "-m",
            "x",
        ],
    );
    let t = text(&out);
    assert!(t.contains("received PUBACK (Mid: 1, RC:135)"), "{t}");
    let out = mosquitto_pub(
        addr,
        &[
            "-V",
            "mqttv5",
            "-d",
            "-q",
            "2",
            "-t",
            "secret/recipe",
            "-m",
            "x",
        ],
    );
    let t = text(&out);
    assert!(
        t.contains("received PUBREC (Mid: 1)") && t.contains("Publish 1 failed: Not authorized"),
        "{t}"
    );
    // MQTT 3.1.1 has no reason codes: the message is acknowledged and dropped.
    let out = mosquitto_pub(
        addr,
        &[
            "-V",
            "mqttv311",
            "-d",
            "-q",
            "1",
            "-t",
            "secret/recipe",
            "-m",
            "x",
        ],
    );
    let t = text(&out);
    assert!(t.contains("received PUBACK (Mid: 1, RC:0)"), "{t}");
    let out = mosquitto_pub(
        addr,
        &[
            "-V",
            "mqttv311",
            "-d",
            "-q",
            "2",
            "-t",
            "secret/recipe",
            "-m",
            "x",
        ],
    );
    let t = text(&out);
    assert!(
        t.contains("received PUBREC (Mid: 1)") && t.contains("received PUBCOMP (Mid: 1"),
        "{t}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v3_deny_disconnect_closes_the_client_on_a_denied_publish() {
    let broker = Broker::start();
    let sluice = sluice_for(&broker, "v3_deny: disconnect");
    let out = mosquitto_pub(
        sluice.addr(),
        &[
            "-V",
            "mqttv311",
            "-d",
            "-q",
            "1",
            "-t",
            "secret/recipe",
            "-m",
            "x",
        ],
    );
    let t = text(&out);
    assert!(!t.contains("received PUBACK"), "{t}");
    assert!(!out.status.success(), "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_will_topic_refuses_the_connection_in_both_versions() {
    let broker = Broker::start();
    let sluice = sluice_for(&broker, "");
    for (version, refusal) in [
        ("mqttv311", "Connection Refused: not authorised"),
        ("mqttv5", "received CONNACK (135)"),
    ] {
        let out = mosquitto_pub(
            sluice.addr(),
            &[
                "-V",
                version,
                "-d",
                "--will-topic",
                "secret/last-words",
                "--will-payload",
                "bye",
                "-t",
                "plant/a",
                "-m",
                "1",
            ],
        );
        let t = text(&out);
        assert!(
            t.to_lowercase().contains(&refusal.to_lowercase()),
            "{version}: {t}"
        );
    }
    let out = mosquitto_pub(
        sluice.addr(),
        &[
            "-V",
            "mqttv5",
            "--will-topic",
            "plant/last-words",
            "--will-payload",
            "bye",
            "-t",
            "plant/a",
            "-m",
            "1",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_will_is_published_when_the_client_vanishes() {
    let broker = Broker::start();
    let sluice = sluice_for(&broker, "");
    let watcher = Watcher::start(broker.addr, &["plant/#"]).await;
    let addr = sluice.addr();
    let mut opts = MqttOptions::new("press-7", addr.ip().to_string(), addr.port());
    opts.set_last_will(rumqttc::LastWill::new(
        "plant/press7/status",
        "offline",
        QoS::AtLeastOnce,
        true,
    ));
    let (client, mut events) = AsyncClient::new(opts, 10);
    loop {
        if let Ok(Event::Incoming(Packet::ConnAck(_))) = events.poll().await {
            break;
        }
    }
    // Vanish without DISCONNECT: the broker publishes the Will.
    drop(events);
    drop(client);
    watcher.wait_for("plant/press7/status", 1).await;
    assert_eq!(watcher.payloads("plant/press7/status")[0], b"offline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_messages_and_large_payloads_pass_intact() {
    let broker = Broker::start();
    let sluice = sluice_for(&broker, "");
    let addr = sluice.addr();
    let out = mosquitto_pub(
        addr,
        &["-r", "-q", "1", "-t", "plant/line1/config", "-m", "v42"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = mosquitto_pub(addr, &["-r", "-q", "1", "-t", "secret/config", "-m", "v42"]);
    assert!(out.status.success(), "{}", text(&out));

    let watcher = Watcher::start(broker.addr, &["plant/line1/snapshot", "plant/line1/done"]).await;
    let mut opts = MqttOptions::new("bulk", addr.ip().to_string(), addr.port());
    opts.set_max_packet_size(4 << 20, 4 << 20);
    let (client, mut events) = AsyncClient::new(opts, 10);
    let big: Vec<u8> = (0..512 * 1024u32).map(|i| (i % 251) as u8).collect();
    let payload = big.clone();
    tokio::spawn(async move {
        let _ = client
            .publish("plant/line1/snapshot", QoS::AtLeastOnce, false, payload)
            .await;
        let _ = client
            .publish("plant/line1/done", QoS::AtLeastOnce, false, "1")
            .await;
        loop {
            if events.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    watcher.wait_for("plant/line1/done", 1).await;
    let got = watcher.payloads("plant/line1/snapshot");
    assert!(
        got.len() == 1 && got[0] == big,
        "512 KiB payload did not arrive intact"
    );
    let watcher = Watcher::start(broker.addr, &["plant/#", "secret/#"]).await;
    watcher.wait_for("plant/line1/config", 1).await;
    // The new subscriber got the retained message, flagged as retained; the secret one was
    // never stored.
    let got = watcher.got.lock().map(|g| g.clone()).unwrap_or_default();
    assert!(
        got.iter()
            .any(|(t, p, r)| t == "plant/line1/config" && p == b"v42" && *r),
        "{got:?}"
    );
    assert_eq!(watcher.count("secret/config"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rumqttc_v4_and_v5_publish_at_every_qos_and_v5_sees_0x87() {
    let broker = Broker::start();
    let sluice = sluice_for(&broker, "");
    let watcher = Watcher::start(broker.addr, &["#"]).await;
    let addr = sluice.addr();

    // v4
    let (c4, mut e4) = AsyncClient::new(
        MqttOptions::new("v4", addr.ip().to_string(), addr.port()),
        10,
    );
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let _ = c4.publish("plant/v4", qos, false, "ok").await;
        let _ = c4.publish("secret/v4", qos, false, "no").await;
    }
    let mut acks = 0;
    while acks < 4 {
        match tokio::time::timeout(WAIT, e4.poll()).await {
            Ok(Ok(Event::Incoming(Packet::PubAck(_) | Packet::PubComp(_)))) => acks += 1,
            Ok(Ok(_)) => {}
            other => panic!("v4 client: {other:?}"),
        }
    }

    // v5
    let opts = rumqttc::v5::MqttOptions::new("v5", addr.ip().to_string(), addr.port());
    let (c5, mut e5) = rumqttc::v5::AsyncClient::new(opts, 10);
    let _ = c5.publish("plant/v5", Q5::AtLeastOnce, false, "ok").await;
    let _ = c5.publish("secret/v5", Q5::AtLeastOnce, false, "no").await;
    let _ = c5.publish("plant/v5", Q5::ExactlyOnce, false, "ok").await;
    let _ = c5.publish("secret/v5", Q5::ExactlyOnce, false, "no").await;
    let (mut puback, mut pubrec) = (Vec::new(), Vec::new());
    while puback.len() < 2 || pubrec.len() < 2 {
        match tokio::time::timeout(WAIT, e5.poll()).await {
            Ok(Ok(rumqttc::v5::Event::Incoming(P5::PubAck(a)))) => puback.push(a.reason),
            Ok(Ok(rumqttc::v5::Event::Incoming(P5::PubRec(r)))) => pubrec.push(r.reason),
            Ok(Ok(_)) => {}
            other => panic!("v5 client: {other:?}"),
        }
    }
    puback.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(
        puback,
        vec![PubAckReason::NotAuthorized, PubAckReason::Success]
    );
    assert!(pubrec.contains(&PubRecReason::NotAuthorized), "{pubrec:?}");

    let _ = c5
        .publish("plant/marker", Q5::AtMostOnce, false, "end")
        .await;
    for _ in 0..10 {
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(100), e5.poll()).await {}
    }
    watcher.wait_for("plant/marker", 1).await;
    watcher.wait_for("plant/v4", 3).await;
    watcher.wait_for("plant/v5", 2).await;
    assert_eq!(watcher.count("secret/v4") + watcher.count("secret/v5"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_with_mixed_filters_gets_a_merged_suback_in_order() {
    let broker = Broker::start();
    let sluice = sluice_for(&broker, "");
    let addr = sluice.addr();

    // MQTT 5
    let opts = rumqttc::v5::MqttOptions::new("sub5", addr.ip().to_string(), addr.port());
    let (c5, mut e5) = rumqttc::v5::AsyncClient::new(opts, 10);
    use rumqttc::v5::mqttbytes::v5::Filter;
    c5.subscribe_many(vec![
        Filter::new("plant/+/temp", Q5::AtLeastOnce),
        Filter::new("secret/#", Q5::AtLeastOnce),
        Filter::new("#", Q5::AtMostOnce),
        Filter::new("plant/line2/#", Q5::ExactlyOnce),
    ])
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let codes = loop {
        match tokio::time::timeout(WAIT, e5.poll()).await {
            Ok(Ok(rumqttc::v5::Event::Incoming(P5::SubAck(s)))) => break s.return_codes,
            Ok(Ok(_)) => {}
            other => panic!("v5 subscriber: {other:?}"),
        }
    };
    assert_eq!(
        codes,
        vec![
            S5::Success(Q5::AtLeastOnce),
            S5::NotAuthorized,
            S5::NotAuthorized,
            S5::Success(Q5::ExactlyOnce)
        ]
    );

    // MQTT 3.1.1
    let (c4, mut e4) = AsyncClient::new(
        MqttOptions::new("sub4", addr.ip().to_string(), addr.port()),
        10,
    );
    c4.subscribe_many(vec![
        rumqttc::SubscribeFilter::new("secret/#".into(), QoS::AtLeastOnce),
        rumqttc::SubscribeFilter::new("plant/+/temp".into(), QoS::AtLeastOnce),
    ])
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let codes = loop {
        match tokio::time::timeout(WAIT, e4.poll()).await {
            Ok(Ok(Event::Incoming(Packet::SubAck(s)))) => break s.return_codes,
            Ok(Ok(_)) => {}
            other => panic!("v4 subscriber: {other:?}"),
        }
    };
    assert_eq!(
        codes,
        vec![
            SubscribeReasonCode::Failure,
            SubscribeReasonCode::Success(QoS::AtLeastOnce)
        ]
    );

    // Fully denied: answered locally.
    c4.subscribe("secret/only", QoS::AtMostOnce)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let codes = loop {
        match tokio::time::timeout(WAIT, e4.poll()).await {
            Ok(Ok(Event::Incoming(Packet::SubAck(s)))) => break s.return_codes,
            Ok(Ok(_)) => {}
            other => panic!("v4 subscriber: {other:?}"),
        }
    };
    assert_eq!(codes, vec![SubscribeReasonCode::Failure]);

    // Only the allowed filter delivers.
    let out = mosquitto_pub(broker.addr, &["-t", "secret/x", "-m", "no"]);
    assert!(out.status.success());
    let out = mosquitto_pub(broker.addr, &["-t", "plant/line1/temp", "-m", "yes"]);
    assert!(out.status.success());
    let topic = loop {
        match tokio::time::timeout(WAIT, e4.poll()).await {
            Ok(Ok(Event::Incoming(Packet::Publish(p)))) => break p.topic,
            Ok(Ok(_)) => {}
            other => panic!("v4 subscriber: {other:?}"),
        }
    };
    assert_eq!(topic, "plant/line1/temp");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_aliases_resolve_and_a_denied_topic_never_rides_an_alias() {
    let broker = Broker::start();
    let sluice = sluice_for(&broker, "");
    let watcher = Watcher::start(broker.addr, &["#"]).await;
    let mut raw = Raw::connect(sluice.addr());
    raw.send(&connect_packet(5, "aliaser"));
    let connack = raw.read_packet();
    assert_eq!(
        connack[..4],
        [0x20, connack[1], 0, 0],
        "CONNACK refused: {connack:?}"
    );
    let alias = |n: u8| [0x23u8, 0, n];
    // Alias 1 set by a denied publish: refused, and so is every alias-only use of it.
    raw.send(&publish_packet(
        b"secret/a",
        Some((1, 1)),
        Some(&alias(1)),
        b"s1",
    ));
    assert_eq!(raw.read_packet(), vec![0x40, 3, 0, 1, 0x87]);
    raw.send(&publish_packet(b"", Some((1, 2)), Some(&alias(1)), b"s2"));
    assert_eq!(raw.read_packet(), vec![0x40, 3, 0, 2, 0x87]);
    // Alias 2 set by an allowed publish, then used alone: both arrive under the real topic.
    raw.send(&publish_packet(
        b"plant/aliased",
        Some((1, 3)),
        Some(&alias(2)),
        b"a1",
    ));
    let ack = raw.read_packet();
    assert_eq!(
        (ack[0], &ack[2..4], ack.get(4).copied().unwrap_or(0)),
        (0x40, &[0, 3][..], 0)
    );
    raw.send(&publish_packet(b"", Some((1, 4)), Some(&alias(2)), b"a2"));
    let ack = raw.read_packet();
    assert_eq!(
        (ack[0], &ack[2..4], ack.get(4).copied().unwrap_or(0)),
        (0x40, &[0, 4][..], 0)
    );
    // Moving allowed alias 2 to a denied topic does not leave the old mapping usable.
    raw.send(&publish_packet(
        b"secret/b",
        Some((1, 5)),
        Some(&alias(2)),
        b"s3",
    ));
    assert_eq!(raw.read_packet(), vec![0x40, 3, 0, 5, 0x87]);
    raw.send(&publish_packet(b"", Some((1, 6)), Some(&alias(2)), b"s4"));
    assert_eq!(raw.read_packet(), vec![0x40, 3, 0, 6, 0x87]);
    raw.send(&publish_packet(b"plant/marker", None, Some(&[]), b"end"));
    watcher.wait_for("plant/marker", 1).await;
    assert_eq!(
        watcher.payloads("plant/aliased"),
        vec![b"a1".to_vec(), b"a2".to_vec()]
    );
    assert_eq!(watcher.count("secret/a") + watcher.count("secret/b"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_disconnects_the_client_which_reconnects_and_flows_again() {
    let mut broker = Broker::start();
    let sluice = sluice_for(&broker, "");
    let addr = sluice.addr();
    let mut opts = MqttOptions::new("restarter", addr.ip().to_string(), addr.port());
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut events) = AsyncClient::new(opts, 10);
    let watcher = Watcher::start(broker.addr, &["plant/#"]).await;
    let _ = client
        .publish("plant/before", QoS::AtLeastOnce, false, "1")
        .await;
    loop {
        if let Ok(Event::Incoming(Packet::PubAck(_))) = events.poll().await {
            break;
        }
    }
    watcher.wait_for("plant/before", 1).await;
    drop(watcher);
    broker.restart();
    // The client sees the disconnect...
    let err = loop {
        match tokio::time::timeout(WAIT, events.poll()).await {
            Ok(Err(e)) => break e,
            Ok(Ok(_)) => {}
            Err(_) => panic!("client never saw the broker go away"),
        }
    };
    let _ = err;
    // ...and reconnects through sluice; traffic flows again.
    let watcher = Watcher::start(broker.addr, &["plant/#"]).await;
    let _ = client
        .publish("plant/after", QoS::AtLeastOnce, false, "2")
        .await;
    let start = std::time::Instant::now();
    while watcher.count("plant/after") == 0 {
        assert!(
            start.elapsed() < WAIT,
            "no traffic after the broker restart"
        );
        let _ = tokio::time::timeout(Duration::from_millis(200), events.poll()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_publishes_in_one_write_keep_their_order_and_denied_ones_never_leak() {
    let broker = Broker::start();
    let sluice = sluice_for(&broker, "");
    let watcher = Watcher::start(broker.addr, &["#"]).await;
    let mut raw = Raw::connect(sluice.addr());
    raw.send(&connect_packet(5, "pipeliner"));
    let connack = raw.read_packet();
    assert_eq!(
        connack[..4],
        [0x20, connack[1], 0, 0],
        "CONNACK refused: {connack:?}"
    );
    // One write of 300 QoS 1 publishes, every third one denied, plus denied QoS 0 ones
    // between them: sluice sees many frames per read, and frames cut across reads.
    const N: u16 = 300;
    let denied = |id: u16| id % 3 == 0;
    let mut burst = Vec::new();
    for id in 1..=N {
        let topic: &[u8] = if denied(id) {
            b"secret/pipe"
        } else {
            b"plant/pipe"
        };
        burst.extend_from_slice(&publish_packet(
            topic,
            Some((1, id)),
            Some(&[]),
            &id.to_be_bytes(),
        ));
        if id % 50 == 0 {
            burst.extend_from_slice(&publish_packet(b"secret/q0", None, Some(&[]), b"q0"));
        }
    }
    raw.send(&burst);

    // Every publish is acknowledged exactly once: the denied ones by sluice with 0x87, in
    // their order; the allowed ones by the broker with success, in theirs.
    let (mut refused, mut accepted) = (Vec::new(), Vec::new());
    for _ in 1..=N {
        let p = raw.read_packet();
        assert_eq!(p[0], 0x40, "expected a PUBACK, got {p:?}");
        let id = u16::from_be_bytes([p[2], p[3]]);
        match p.get(4).copied().unwrap_or(0) {
            0x87 => refused.push(id),
            0 => accepted.push(id),
            code => panic!("PUBACK {id} with reason {code:#x}"),
        }
    }
    let want_refused: Vec<u16> = (1..=N).filter(|&id| denied(id)).collect();
    let want_accepted: Vec<u16> = (1..=N).filter(|&id| !denied(id)).collect();
    assert_eq!(refused, want_refused);
    assert_eq!(accepted, want_accepted);

    // The broker got the allowed ones in the order sent, and nothing denied.
    watcher.wait_for("plant/pipe", want_accepted.len()).await;
    let got: Vec<Vec<u8>> = watcher.payloads("plant/pipe");
    let want: Vec<Vec<u8>> = want_accepted
        .iter()
        .map(|id| id.to_be_bytes().to_vec())
        .collect();
    assert_eq!(got, want);
    assert_eq!(watcher.count("secret/pipe"), 0);
    assert_eq!(watcher.count("secret/q0"), 0);
}
