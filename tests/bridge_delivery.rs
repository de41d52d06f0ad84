//! The export bridge end to end: a plant mosquitto, a cloud mosquitto outside the site, and
//! `sluice serve` with one bridge between them, judged by the shipped egress policy with an
//! allowlist written here. The cloud is down while the plant publishes; what the policy allows
//! must all arrive once it is back (after a SIGKILL of sluice too), and nothing else.
//!
//! Needs /usr/sbin/mosquitto.

mod bridge_support;

use bridge_support::*;

const ALLOWED: &str = "plant/line1/aggregates/hourly";
const DENIED: &str = "plant/line1/raw/temp";

fn interleaved(allowed: usize, denied: usize) -> Vec<(String, String)> {
    let mut out = messages(ALLOWED, "a-", allowed);
    for (i, m) in messages(DENIED, "r-", denied).into_iter().enumerate() {
        out.insert((i * 2 + 1).min(out.len()), m);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_cloud_down_every_allowed_message_arrives_later_and_no_denied_one() {
    let dir = Dir::new("offline");
    let plant = Broker::started("127.0.0.1", "");
    let (mut cloud, arrivals) = cloud_down().await;
    write_policy(&dir, "127.0.0.2", &["plant/+/aggregates/#"]);
    let spool = dir.path("spool/cloud.db");
    let (cfg, admin) = bridge_config(
        &dir,
        &plant,
        &cloud.addr.to_string(),
        &format!("spool: {{path: {}}}", spool.display()),
        "",
    );
    let sluice = Sluice::start(&dir, &cfg, admin);
    sluice.wait_bridge("local_up", 1.0);

    publish_all(plant.addr, interleaved(5_000, 5_000)).await;
    sluice.wait_bridge("spooled_total", 5_000.0);
    sluice.wait_bridge("denied_total", 5_000.0);
    assert_eq!(sluice.bridge("spool_messages"), 5_000.0);
    assert_eq!(sluice.bridge("uplink_up"), 0.0);

    cloud_back(&mut cloud, &arrivals);
    arrivals.wait("a-", 5_000);
    sluice.wait_bridge("sent_total", 5_000.0);
    sluice.wait_spool_empty();
    assert_eq!(
        arrivals.count("r-"),
        0,
        "a denied message reached the cloud"
    );
    assert_eq!(sluice.bridge("denied_on_replay_total"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sluice_killed_in_the_middle_of_replay_loses_nothing_and_counts_redeliveries() {
    let dir = Dir::new("sigkill");
    let plant = Broker::started("127.0.0.1", "");
    let (mut cloud, arrivals) = cloud_down().await;
    write_policy(&dir, "127.0.0.2", &["plant/+/aggregates/#"]);
    let spool = dir.path("cloud.db");
    let (cfg, admin) = bridge_config(
        &dir,
        &plant,
        &cloud.addr.to_string(),
        &format!(
            "spool: {{path: {}}}\nreplay: {{rate: 2000/s}}",
            spool.display()
        ),
        "",
    );
    let mut sluice = Sluice::start(&dir, &cfg, admin);
    sluice.wait_bridge("local_up", 1.0);
    publish_all(plant.addr, interleaved(4_000, 1_000)).await;
    sluice.wait_bridge("spooled_total", 4_000.0);

    cloud_back(&mut cloud, &arrivals);
    arrivals.wait("a-", 1_000);
    sluice.kill_and_restart();
    wait_until(
        || sluice.logs().contains("bridge running"),
        || sluice.logs(),
    );
    arrivals.wait_or("a-", 4_000, || {
        let stats = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["spool", "ls", "--limit", "5"])
            .arg(&spool)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        format!("{}\n{stats}\n{}", sluice.bridge_metrics(), sluice.logs())
    });
    sluice.wait_spool_empty();
    assert_eq!(arrivals.count("r-"), 0);
    // Every duplicate the cloud saw was sent again on purpose and counted.
    let redelivered = sluice.bridge("redelivered_total");
    assert!(
        arrivals.duplicates() as f64 <= redelivered,
        "{} duplicates, {redelivered} counted",
        arrivals.duplicates()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_tightened_while_offline_keeps_the_now_denied_backlog_in_the_plant() {
    let dir = Dir::new("tightened");
    let plant = Broker::started("127.0.0.1", "");
    let (mut cloud, arrivals) = cloud_down().await;
    write_policy(
        &dir,
        "127.0.0.2",
        &["plant/+/aggregates/#", "plant/+/oee/#"],
    );
    let (cfg, admin) = bridge_config(
        &dir,
        &plant,
        &cloud.addr.to_string(),
        &format!("spool: {{path: {}}}", dir.path("cloud.db").display()),
        "",
    );
    let cfg = cfg.replace("  decision:", "  watch: true\n  decision:");
    let sluice = Sluice::start(&dir, &cfg, admin);
    sluice.wait_bridge("local_up", 1.0);
    let mut msgs = messages(ALLOWED, "a-", 200);
    msgs.extend(messages("plant/line1/oee/shift", "o-", 200));
    publish_all(plant.addr, msgs).await;
    sluice.wait_bridge("spooled_total", 400.0);

    write_policy(&dir, "127.0.0.2", &["plant/+/aggregates/#"]);
    wait_until(
        || {
            sluice
                .metrics()
                .lines()
                .any(|l| l.starts_with("sluice_policy_reloads_total{result=\"success\"} 1"))
        },
        || sluice.logs(),
    );
    cloud_back(&mut cloud, &arrivals);
    arrivals.wait("a-", 200);
    sluice.wait_bridge("denied_on_replay_total", 200.0);
    sluice.wait_spool_empty();
    assert_eq!(
        arrivals.count("o-"),
        0,
        "a now-denied message left the plant"
    );
    assert_eq!(sluice.bridge("sent_total"), 200.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_past_the_ttl_are_removed_and_counted_not_sent() {
    let dir = Dir::new("ttl");
    let plant = Broker::started("127.0.0.1", "");
    let (mut cloud, arrivals) = cloud_down().await;
    write_policy(&dir, "127.0.0.2", &["plant/+/aggregates/#"]);
    let (cfg, admin) = bridge_config(
        &dir,
        &plant,
        &cloud.addr.to_string(),
        &format!(
            "spool: {{path: {}, ttl: 1s}}",
            dir.path("cloud.db").display()
        ),
        "",
    );
    let sluice = Sluice::start(&dir, &cfg, admin);
    sluice.wait_bridge("local_up", 1.0);
    publish_all(plant.addr, messages(ALLOWED, "old-", 50)).await;
    sluice.wait_bridge("expired_total", 50.0);
    assert_eq!(sluice.bridge("spool_messages"), 0.0);

    cloud_back(&mut cloud, &arrivals);
    sluice.wait_bridge("uplink_up", 1.0);
    publish_all(plant.addr, messages(ALLOWED, "fresh-", 1)).await;
    arrivals.wait("fresh-", 1);
    assert_eq!(arrivals.count("old-"), 0);
}

/// 200 messages of ~1 KiB into a 64 KiB spool while the cloud is down.
async fn overfill(on_full: &str) -> (Dir, Broker, Broker, Arrivals, Sluice) {
    let dir = Dir::new(on_full);
    let plant = Broker::started("127.0.0.1", "");
    let (cloud, arrivals) = cloud_down().await;
    write_policy(&dir, "127.0.0.2", &["plant/+/aggregates/#"]);
    let (cfg, admin) = bridge_config(
        &dir,
        &plant,
        &cloud.addr.to_string(),
        &format!(
            "spool: {{path: {}, max_bytes: 64KiB, on_full: {on_full}}}",
            dir.path("cloud.db").display()
        ),
        "",
    );
    let sluice = Sluice::start(&dir, &cfg, admin);
    sluice.wait_bridge("local_up", 1.0);
    let pad = "x".repeat(1000);
    let msgs = (0..200)
        .map(|i| (ALLOWED.to_string(), format!("m-{i:03}-{pad}")))
        .collect();
    publish_all(plant.addr, msgs).await;
    (dir, plant, cloud, arrivals, sluice)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_with_drop_oldest_keeps_the_newest_and_counts_the_dropped() {
    let (_dir, _plant, mut cloud, arrivals, sluice) = overfill("drop_oldest").await;
    sluice.wait_bridge("spooled_total", 200.0);
    let kept = sluice.bridge("spool_messages");
    let dropped = sluice.bridge("dropped_total{reason=\"full\"}");
    assert!(kept > 0.0 && kept < 200.0, "{}", sluice.bridge_metrics());
    assert_eq!(kept + dropped, 200.0, "{}", sluice.bridge_metrics());
    assert!(sluice.bridge("spool_bytes") <= 65_536.0);

    cloud_back(&mut cloud, &arrivals);
    arrivals.wait("m-", kept as usize);
    assert!(
        arrivals.count("m-199-") == 1,
        "the newest message is missing"
    );
    assert_eq!(arrivals.count("m-000-"), 0, "the oldest was not dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_with_refuse_new_holds_the_plant_back_and_loses_nothing() {
    let (_dir, _plant, mut cloud, arrivals, sluice) = overfill("refuse_new").await;
    sluice.wait_bridge("errors_total{kind=\"spool_full\"}", 1.0);
    let kept = sluice.bridge("spool_messages");
    assert!(kept < 200.0, "{}", sluice.bridge_metrics());
    assert_eq!(sluice.bridge("dropped_total{reason=\"full\"}"), 0.0);

    cloud_back(&mut cloud, &arrivals);
    arrivals.wait("m-", 200);
    assert_eq!(sluice.bridge("dropped_total{reason=\"full\"}"), 0.0);
}
