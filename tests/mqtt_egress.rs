//! The realistic scenario: one sluice with two MQTT listeners, one in front of the plant's
//! broker (local) and one in front of a "cloud" broker outside the site, judged by the shipped
//! `data.manufacturing.egress` policy whose allowlist lets only `plant/+/aggregates/#` out.
//!
//! The site is `local_networks: [127.0.0.1/32]`, so a broker on 127.0.0.2 is outside it.
//! Needs mosquitto and mosquitto-clients.

mod support;

use rumqttc::v5::mqttbytes::QoS as Q5;
use rumqttc::v5::mqttbytes::v5::{Filter, Packet as P5, SubscribeReasonCode as S5};
use support::*;

fn egress_config(local: &Broker, cloud_upstream: &str) -> String {
    let policy = format!(
        "site:\n  name: plant-042\n  local_networks: [127.0.0.1/32]\n  local_domains: [localhost]\npolicy:\n  paths: [{}, {}, {}]\n  decision: data.manufacturing.egress\n",
        repo("policies/manufacturing/smart.rego").display(),
        repo("policies/manufacturing/egress.rego").display(),
        repo("fixtures/mqtt/egress").display(),
    );
    config_with(
        &[
            (format!("localhost:{}", local.port()), ""),
            (cloud_upstream.to_string(), ""),
        ],
        &policy,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_allowlisted_aggregates_reach_the_cloud_broker_while_local_traffic_flows() {
    let local = Broker::start_on("127.0.0.1", "");
    let cloud = Broker::start_on("127.0.0.2", "");
    let sluice = Sluice::serve(&egress_config(&local, &cloud.addr.to_string()));
    let (to_local, to_cloud) = (sluice.mqtt[0], sluice.mqtt[1]);
    let local_watch = Watcher::start(local.addr, &["#"]).await;
    let cloud_watch = Watcher::start(cloud.addr, &["#"]).await;

    // Local: the seed rule lets everything stay in the plant (the broker is reached by name).
    let out = mosquitto_pub(
        to_local,
        &["-q", "1", "-t", "plant/line1/raw/temp", "-m", "21.5"],
    );
    assert!(out.status.success(), "{}", text(&out));
    local_watch.wait_for("plant/line1/raw/temp", 1).await;

    // Cloud: aggregates leave, raw data never does, however often it is tried.
    for _ in 0..25 {
        let out = mosquitto_pub(
            to_cloud,
            &[
                "-V",
                "mqttv5",
                "-d",
                "-q",
                "1",
                "-t",
                "plant/line1/raw/temp",
                "-m",
                "21.5",
            ],
        );
        let t = text(&out);
        assert!(t.contains("received PUBACK (Mid: 1, RC:135)"), "{t}");
    }
    let out = mosquitto_pub(
        to_cloud,
        &[
            "-V",
            "mqttv5",
            "-d",
            "-q",
            "1",
            "-t",
            "plant/line1/aggregates/hourly",
            "-m",
            "{\"avg\":21.4}",
        ],
    );
    let t = text(&out);
    assert!(t.contains("received PUBACK (Mid: 1, RC:0)"), "{t}");
    cloud_watch
        .wait_for("plant/line1/aggregates/hourly", 1)
        .await;
    assert_eq!(cloud_watch.count("plant/line1/raw/temp"), 0);
    assert_eq!(
        cloud_watch.topics(),
        vec!["plant/line1/aggregates/hourly".to_string()]
    );

    // Subscribing from the cloud: only what the allowlist covers.
    let opts =
        rumqttc::v5::MqttOptions::new("cloud-sub", to_cloud.ip().to_string(), to_cloud.port());
    let (client, mut events) = rumqttc::v5::AsyncClient::new(opts, 10);
    client
        .subscribe_many(vec![
            Filter::new("plant/+/aggregates/#", Q5::AtLeastOnce),
            Filter::new("#", Q5::AtLeastOnce),
            Filter::new("plant/line1/raw/+", Q5::AtLeastOnce),
        ])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let codes = loop {
        match tokio::time::timeout(WAIT, events.poll()).await {
            Ok(Ok(rumqttc::v5::Event::Incoming(P5::SubAck(s)))) => break s.return_codes,
            Ok(Ok(_)) => {}
            other => panic!("cloud subscriber: {other:?}"),
        }
    };
    assert_eq!(
        codes,
        vec![
            S5::Success(Q5::AtLeastOnce),
            S5::NotAuthorized,
            S5::NotAuthorized
        ]
    );
    assert!(
        sluice.metric(
            "sluice_decisions_total{protocol=\"mqtt\",operation=\"publish\",verdict=\"deny\"}"
        ) >= 25.0,
        "{}",
        sluice.metrics()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_broker_name_outside_the_allowlist_is_refused_before_any_lookup() {
    let local = Broker::start_on("127.0.0.1", "");
    // `.invalid` never resolves: a lookup would end in "server unavailable", the policy's refusal
    // is "not authorised" — which proves the name was judged first.
    let sluice = Sluice::serve(&egress_config(&local, "ingest.cloud.invalid:8883"));
    for (version, expect) in [("mqttv311", "not authorised"), ("mqttv5", "CONNACK (135)")] {
        let out = mosquitto_pub(
            sluice.mqtt[1],
            &["-V", version, "-d", "-t", "plant/x", "-m", "1"],
        );
        let t = text(&out);
        assert!(t.contains(expect), "{version}: {t}");
    }
    assert_eq!(
        sluice.metric(
            "sluice_decisions_total{protocol=\"mqtt\",operation=\"connect\",verdict=\"deny\"}"
        ),
        2.0
    );
    assert_eq!(
        sluice.metric("sluice_errors_total{protocol=\"mqtt\",kind=\"upstream_resolve\"}"),
        0.0
    );
}
