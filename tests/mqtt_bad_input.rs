//! Bad input disconnects only the client that sent it: with the MQTT 5 reason code where there
//! is one, counted in `sluice_errors_total{protocol="mqtt",kind}`, while another client keeps
//! publishing through the same listener.
//!
//! Needs mosquitto.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use support::*;

/// A well-behaved client publishing QoS 1 through sluice all along, counting its PUBACKs.
struct Steady {
    acks: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Steady {
    async fn start(addr: std::net::SocketAddr) -> Self {
        let opts = MqttOptions::new("steady", addr.ip().to_string(), addr.port());
        let (client, mut events) = AsyncClient::new(opts, 10);
        let acks = Arc::new(AtomicU64::new(0));
        let count = Arc::clone(&acks);
        let task = tokio::spawn(async move {
            let publisher = tokio::spawn(async move {
                loop {
                    if client
                        .publish("plant/steady", QoS::AtLeastOnce, false, "ok")
                        .await
                        .is_err()
                    {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            });
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    // The steady client must never be disconnected.
                    Err(e) => panic!("steady client lost its connection: {e}"),
                }
                if publisher.is_finished() {
                    return;
                }
            }
        });
        let s = Self { acks, task };
        s.wait_more(0).await;
        s
    }

    /// Waits until more than `n` publishes were acknowledged; returns the count.
    async fn wait_more(&self, n: u64) -> u64 {
        let start = Instant::now();
        loop {
            let now = self.acks.load(Ordering::Relaxed);
            if now > n {
                return now;
            }
            assert!(!self.task.is_finished(), "steady client stopped");
            assert!(start.elapsed() < WAIT, "steady client made no progress");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Runs one bad client: connects at `level` (None: sends `bad` as its first bytes), sends
/// `bad`, and returns everything it received after CONNACK until sluice closed the socket.
async fn bad_client(sluice: &Sluice, level: Option<u8>, bad: Vec<u8>) -> Vec<u8> {
    let addr = sluice.addr();
    tokio::task::spawn_blocking(move || {
        let mut raw = Raw::connect(addr);
        if let Some(level) = level {
            raw.send(&connect_packet(level, "bad-client"));
            let connack = raw.read_packet();
            assert_eq!(connack[0], 0x20, "{connack:?}");
            assert_eq!(connack[3], 0, "CONNACK refused: {connack:?}");
        }
        raw.send(&bad);
        raw.read_to_close()
    })
    .await
    .unwrap_or_else(|e| panic!("bad client: {e}"))
}

async fn case(extra: &str, level: Option<u8>, bad: Vec<u8>, reply: &[u8], kind: &str) {
    let broker = Broker::start();
    let sluice = sluice_for(&broker, extra);
    let steady = Steady::start(sluice.addr()).await;
    let before = steady.wait_more(0).await;
    let got = bad_client(&sluice, level, bad).await;
    assert_eq!(
        got, reply,
        "what the bad client received before being disconnected"
    );
    let sample = format!("sluice_errors_total{{protocol=\"mqtt\",kind=\"{kind}\"}}");
    sluice.wait_metric(&sample, 1.0);
    // The other session never noticed.
    steady.wait_more(before + 5).await;
    assert_eq!(
        sluice.metric("sluice_connections_open{protocol=\"mqtt\"}"),
        1.0,
        "only the steady client is left"
    );
}

const DISCONNECT: u8 = 0xE0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_remaining_length_disconnects_with_0x81() {
    let bad = vec![0x30, 0xff, 0xff, 0xff, 0xff, 0x01];
    case("", Some(5), bad, &[DISCONNECT, 2, 0x81, 0], "malformed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packet_over_the_limit_disconnects_with_0x95_before_its_body_arrives() {
    // Only the header of a 2,000-byte publish: sluice refuses it from the header alone.
    let bad = vec![0x30, 0xd0, 0x0f];
    case(
        "max_packet_size: 1KiB",
        Some(5),
        bad,
        &[DISCONNECT, 2, 0x95, 0],
        "packet_too_large",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_before_connect_is_closed_without_an_answer() {
    let bad = publish_packet(b"plant/a", None, None, b"x");
    case("", None, bad, &[], "protocol_error").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_connect_is_a_protocol_error_0x82() {
    let bad = connect_packet(5, "again");
    case(
        "",
        Some(5),
        bad,
        &[DISCONNECT, 2, 0x82, 0],
        "protocol_error",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_in_a_topic_is_malformed_0x81() {
    let bad = publish_packet(b"plant/\xff\xfe", None, Some(&[]), b"x");
    case("", Some(5), bad, &[DISCONNECT, 2, 0x81, 0], "malformed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcards_in_a_publish_topic_are_topic_name_invalid_0x90() {
    let bad = publish_packet(b"plant/+/temp", Some((1, 1)), Some(&[]), b"x");
    case(
        "",
        Some(5),
        bad,
        &[DISCONNECT, 2, 0x90, 0],
        "topic_name_invalid",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_topic_alias_is_0x94() {
    let bad = publish_packet(b"", Some((1, 1)), Some(&[0x23, 0, 7]), b"x");
    case(
        "",
        Some(5),
        bad,
        &[DISCONNECT, 2, 0x94, 0],
        "topic_alias_invalid",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bytes_instead_of_mqtt_are_closed() {
    let bad = b"GET / HTTP/1.1\r\nHost: broker\r\n\r\n".to_vec();
    case("", None, bad, &[], "malformed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mqtt311_client_breaking_the_protocol_is_closed_without_a_reason_code() {
    // MQTT 3.1.1 has no DISCONNECT from the server: the connection is simply closed.
    let bad = vec![0x30, 0xff, 0xff, 0xff, 0xff, 0x01];
    case("", Some(4), bad, &[], "malformed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsupported_protocol_level_gets_connack_0x01() {
    let mut bad = connect_packet(4, "future");
    bad[8] = 9; // protocol level 9
    case("", None, bad, &[0x20, 2, 0, 0x01], "unsupported_version").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_sends_connect_is_closed_after_connect_timeout() {
    // Opens the socket and stays silent: the slot is freed once `connect_timeout` passes.
    case(
        "connect_timeout: 300ms",
        None,
        Vec::new(),
        &[],
        "connect_timeout",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_listener_sheds_clients_still_short_of_their_connect() {
    let broker = Broker::start();
    let sluice = tokio::task::block_in_place(|| sluice_for(&broker, "max_connections: 1"));
    // A slow client holds the only slot with half a CONNECT.
    let mut slow = Raw::connect(sluice.addr());
    slow.send(&[0x10, 0x20, 0, 4, b'M', b'Q']);
    tokio::task::block_in_place(|| {
        sluice.wait_metric(r#"sluice_connections_open{protocol="mqtt"}"#, 1.0)
    });
    let mut fresh = Raw::connect(sluice.addr());
    fresh.send(&connect_packet(4, "fresh"));
    // Answered before the slow client's 10 s connect_timeout would have freed the slot.
    let _ = fresh.s.set_read_timeout(Some(Duration::from_secs(8)));
    let ack = fresh.read_n(4);
    assert_eq!(ack, vec![0x20, 2, 0, 0]);
    assert!(slow.read_to_close().is_empty());
    assert!(sluice.metric(r#"sluice_errors_total{protocol="mqtt",kind="shed"}"#) >= 1.0);
}
