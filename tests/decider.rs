//! The Decider through the library: the verdict rules of DESIGN.md, fail-closed behaviour,
//! the cache (hits equal misses, never across generations) and use from many threads.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use sluice::policy::{
    Decider, DeciderOptions, HttpFacts, Input, Module, MqttFacts, Operation, PolicySet, Protocol,
    Source, Target, Zone,
};

fn policy(text: &str) -> PolicySet {
    PolicySet {
        modules: vec![Module {
            path: "d.rego".into(),
            text: format!("package d\n\nimport rego.v1\n\n{text}\n"),
        }],
        data: json!({}),
        rego_v0: false,
    }
}

fn opts(decision: &str) -> DeciderOptions {
    DeciderOptions {
        decision: decision.into(),
        ..DeciderOptions::default()
    }
}

fn decider(text: &str) -> Decider {
    Decider::new(&policy(text), opts("data.d")).unwrap_or_else(|e| panic!("{e}"))
}

fn source() -> Source {
    Source {
        workload: "iot-data-processor".into(),
        namespace: "line-1".into(),
        node: "edge-17".into(),
        site: "plant-042".into(),
        client_id: "press-7".into(),
        username: "press-7".into(),
    }
}

fn publish<'a>(src: &'a Source, host: &'a str, zone: Zone, topic: &'a str) -> Input<'a> {
    Input {
        protocol: Protocol::Mqtt,
        operation: Operation::Publish,
        source: src,
        target: Target {
            host,
            port: 1883,
            ip: None,
            zone,
        },
        mqtt: Some(MqttFacts {
            topic,
            qos: 1,
            retain: false,
        }),
        http: None,
    }
}

fn request<'a>(
    src: &'a Source,
    host: &'a str,
    zone: Zone,
    method: &'a str,
    path: &'a str,
) -> Input<'a> {
    Input {
        protocol: Protocol::Http,
        operation: Operation::Request,
        source: src,
        target: Target {
            host,
            port: 80,
            ip: None,
            zone,
        },
        mqtt: None,
        http: Some(HttpFacts {
            method,
            scheme: "http",
            path,
        }),
    }
}

fn local(src: &Source) -> Input<'_> {
    publish(src, "broker.plant.local", Zone::Local, "plant/l1/temp")
}

#[test]
fn allow_true_and_deny_false_undefined_empty_or_absent_is_allowed() {
    let src = source();
    for text in [
        "allow := true\ndeny := false",
        "allow := true\ndeny if input.nothing",
        "allow := true\ndeny contains msg if { input.nothing; msg := \"x\" }",
        "allow := true",
        "allow if input.protocol == \"mqtt\"",
    ] {
        let v = decider(text).decide(&local(&src));
        assert!(v.allowed(), "{text}: {:?}", v.reasons());
        assert!(v.reasons().is_empty(), "{text}: {:?}", v.reasons());
        assert_eq!(v.error(), None);
    }
}

#[test]
fn deny_true_is_denied_even_when_allowed() {
    let src = source();
    let v = decider("allow := true\ndeny := true").decide(&local(&src));
    assert!(!v.allowed());
    assert_eq!(v.reasons(), ["data.d.deny is true"]);
    assert_eq!(v.error(), None);
}

#[test]
fn deny_set_of_reasons_is_denied_with_those_reasons() {
    let src = source();
    let v = decider(
        "allow := true\n\
         deny contains \"topic is raw\" if endswith(input.mqtt.topic, \"temp\")\n\
         deny contains sprintf(\"site %s\", [input.source.site]) if true",
    )
    .decide(&local(&src));
    assert!(!v.allowed());
    assert_eq!(v.reasons(), ["site plant-042", "topic is raw"]);
}

#[test]
fn allow_undefined_or_false_is_denied() {
    let src = source();
    for text in [
        "allow if input.nothing",
        "allow := false",
        "default allow := false",
    ] {
        let v = decider(text).decide(&local(&src));
        assert!(!v.allowed(), "{text}");
        assert_eq!(v.reasons(), ["data.d.allow is not true"], "{text}");
        assert_eq!(v.error(), None, "{text}");
    }
}

#[test]
fn non_boolean_allow_or_malformed_deny_is_denied_with_an_error() {
    let src = source();
    let d = decider("allow := \"yes\"");
    let v = d.decide(&local(&src));
    assert!(!v.allowed());
    assert_eq!(v.error(), Some("data.d.allow must be a boolean, got yes"));
    assert_eq!(d.stats().eval_errors.load(Ordering::Relaxed), 1);

    let v = decider("allow := true\ndeny := 3").decide(&local(&src));
    assert!(!v.allowed());
    assert!(
        v.error()
            .is_some_and(|e| e.contains("deny must be a boolean or a set")),
        "{:?}",
        v.error()
    );
}

#[test]
fn evaluation_error_fails_closed_and_is_not_cached() {
    let src = source();
    let d = decider(
        "allow := true if input.protocol == \"mqtt\"\nallow := false if input.operation == \"publish\"",
    );
    let v = d.decide(&local(&src));
    assert!(!v.allowed());
    let err = v
        .error()
        .unwrap_or_else(|| panic!("no error: {:?}", v.reasons()));
    assert!(
        v.reasons()[0].starts_with("policy evaluation failed: "),
        "{:?}",
        v.reasons()
    );
    assert!(!err.contains('\n'));
    // Retried, not served from the cache.
    let again = d.decide(&local(&src));
    assert!(!again.allowed() && again.error().is_some());
    assert_eq!(d.stats().eval_errors.load(Ordering::Relaxed), 2);
    assert_eq!(d.stats().cache_hits.load(Ordering::Relaxed), 0);
    // Other inputs (where the two definitions do not both apply) still evaluate normally.
    let http = request(&src, "historian.plant.local", Zone::Local, "GET", "/");
    let v = d.decide(&http);
    assert!(!v.allowed());
    assert_eq!(
        (v.error(), v.reasons()),
        (None, &["data.d.allow is not true".to_string()][..])
    );
}

#[test]
fn time_limit_fails_closed_and_counts_a_timeout() {
    let src = source();
    let set = policy(
        "allow if {\n\
         \tcount([1 | some a in numbers.range(1, 10000); some b in numbers.range(1, 10000); a != b]) > 0\n\
         }",
    );
    let d = Decider::new(
        &set,
        DeciderOptions {
            eval_timeout: Duration::from_millis(5),
            ..opts("data.d")
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let v = d.decide(&local(&src));
    assert!(!v.allowed());
    assert!(
        v.error().is_some_and(|e| e.contains("time limit")),
        "{:?}",
        v.error()
    );
    assert_eq!(d.stats().eval_timeouts.load(Ordering::Relaxed), 1);
    assert_eq!(d.stats().eval_errors.load(Ordering::Relaxed), 0);
}

#[test]
fn cache_hit_returns_the_verdict_of_the_miss() {
    let src = source();
    let d = decider(
        "allow if input.target.zone == \"local\"\ndeny contains input.target.host if input.target.zone != \"local\"",
    );
    let inputs = [
        local(&src),
        publish(&src, "cloud.example.com", Zone::External, "plant/l1/temp"),
        request(&src, "cloud.example.com", Zone::External, "POST", "/up"),
    ];
    let first: Vec<_> = inputs.iter().map(|i| d.decide(i)).collect();
    assert_eq!(d.stats().cache_misses.load(Ordering::Relaxed), 3);
    assert_eq!(d.stats().cache_hits.load(Ordering::Relaxed), 0);
    let second: Vec<_> = inputs.iter().map(|i| d.decide(i)).collect();
    assert_eq!(d.stats().cache_hits.load(Ordering::Relaxed), 3);
    assert_eq!(d.stats().cache_misses.load(Ordering::Relaxed), 3);
    for (a, b) in first.iter().zip(&second) {
        assert_eq!(
            (a.allowed(), a.reasons(), a.generation()),
            (b.allowed(), b.reasons(), b.generation())
        );
    }
    assert!(first[0].allowed());
    assert_eq!(first[1].reasons(), ["cloud.example.com"]);
    // An input differing in one field only is a different entry.
    let other_topic = publish(&src, "broker.plant.local", Zone::Local, "plant/l1/pressure");
    let _ = d.decide(&other_topic);
    assert_eq!(d.stats().cache_misses.load(Ordering::Relaxed), 4);
}

#[test]
fn reload_never_serves_a_verdict_of_the_old_generation() {
    let src = source();
    let d = decider("allow := true");
    let input = local(&src);
    assert!(d.decide(&input).allowed());
    assert!(d.decide(&input).allowed()); // now cached
    let generation = d
        .reload(&policy("allow := false"), "rev-2")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(generation, 2);
    let v = d.decide(&input);
    assert!(!v.allowed());
    assert_eq!(v.generation(), 2);
    assert_eq!(d.revision(), "rev-2");

    // A failed reload keeps the current generation serving.
    assert!(d.reload(&policy("allow if {"), "rev-3").is_err());
    assert_eq!(d.generation(), 2);
    assert!(!d.decide(&input).allowed());
}

/// What one deciding thread saw around the reload.
#[derive(Debug, Default)]
struct Observed {
    /// Allowed verdicts of generation 1, all made before the reload began.
    old: usize,
    /// Verdicts asked for after the reload had returned.
    after: usize,
    /// Of those, verdicts that were not generation 2's deny.
    stale: usize,
}

#[test]
fn reload_under_concurrent_decisions_switches_every_thread() {
    // Each thread decides until it has made this many decisions after the reload returned: the
    // test cannot pass without every thread observing the new generation.
    const AFTER: usize = 2000;
    let d = decider("allow := true");
    let reloaded = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let d = d.clone();
            let (reloaded, started) = (Arc::clone(&reloaded), Arc::clone(&started));
            std::thread::spawn(move || {
                let src = source();
                let topics: Vec<String> = (0..16).map(|i| format!("plant/t{t}/{i}")).collect();
                let deadline = Instant::now() + Duration::from_secs(30);
                let mut seen = Observed::default();
                let mut round = 0;
                while seen.after < AFTER && Instant::now() < deadline {
                    let after = reloaded.load(Ordering::Acquire);
                    let topic = &topics[round % topics.len()];
                    let v = d.decide(&publish(&src, "broker.plant.local", Zone::Local, topic));
                    if round == 0 {
                        started.fetch_add(1, Ordering::Release);
                    }
                    round += 1;
                    if after {
                        seen.after += 1;
                        if v.allowed() || v.generation() != 2 {
                            seen.stale += 1;
                        }
                    } else if v.allowed() && v.generation() == 1 {
                        seen.old += 1;
                    }
                }
                seen
            })
        })
        .collect();
    // Reload only once every thread is deciding, so the switch happens under load.
    let deadline = Instant::now() + Duration::from_secs(30);
    while started.load(Ordering::Acquire) < threads.len() {
        assert!(
            Instant::now() < deadline,
            "the deciding threads never started"
        );
        std::thread::yield_now();
    }
    d.reload(&policy("allow := false"), "two")
        .unwrap_or_else(|e| panic!("{e}"));
    reloaded.store(true, Ordering::Release);
    for (t, thread) in threads.into_iter().enumerate() {
        let seen = thread
            .join()
            .unwrap_or_else(|_| panic!("thread {t} panicked"));
        assert!(
            seen.old > 0,
            "thread {t} made no decision of the old policy: {seen:?}"
        );
        assert_eq!(
            seen.after, AFTER,
            "thread {t} did not observe the reload: {seen:?}"
        );
        assert_eq!(
            seen.stale, 0,
            "thread {t} got verdicts of the old policy after the reload returned: {seen:?}"
        );
    }
}

#[test]
fn many_threads_get_the_verdicts_of_a_single_thread() {
    let set = PolicySet::embedded();
    // A generous time limit: on a loaded machine a descheduled evaluation must not turn into a
    // timeout verdict; timeouts have their own test.
    let patient = DeciderOptions {
        eval_timeout: Duration::from_secs(30),
        ..opts("data.manufacturing.egress")
    };
    let d = Decider::new(&set, patient.clone()).unwrap_or_else(|e| panic!("{e}"));
    let reference = Decider::new(
        &set,
        DeciderOptions {
            cache_capacity: 0,
            ..patient
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let src = source();
    let hosts = [
        "broker.plant.local",
        "ingest.cloud.example.com",
        "historian.plant.local",
    ];
    let mut inputs = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        let zone = if host.ends_with(".plant.local") {
            Zone::Local
        } else {
            Zone::External
        };
        for topic in ["plant/l1/temp", "plant/l1/aggregates/h", "$SYS/x"] {
            inputs.push((host.to_string(), zone, Some(topic.to_string()), i));
        }
        inputs.push((host.to_string(), zone, None, i));
    }
    let build =
        |(host, zone, topic, _): &(String, Zone, Option<String>, usize)| -> (bool, Vec<String>) {
            let src = &src;
            let v = match topic {
                Some(t) => reference.decide(&publish(src, host, *zone, t)),
                None => reference.decide(&request(src, host, *zone, "POST", "/upload")),
            };
            (v.allowed(), v.reasons().to_vec())
        };
    let expected: Vec<(bool, Vec<String>)> = inputs.iter().map(build).collect();
    assert!(expected.iter().any(|e| e.0) && expected.iter().any(|e| !e.0));

    let inputs = Arc::new(inputs);
    let expected = Arc::new(expected);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let d = d.clone();
            let inputs = Arc::clone(&inputs);
            let expected = Arc::clone(&expected);
            std::thread::spawn(move || {
                let src = source();
                let mut mismatches = Vec::new();
                for n in 0..2000 {
                    let i = (n * 7 + t) % inputs.len();
                    let (host, zone, topic, _) = &inputs[i];
                    let v = match topic {
                        Some(tp) => d.decide(&publish(&src, host, *zone, tp)),
                        None => d.decide(&request(&src, host, *zone, "POST", "/upload")),
                    };
                    if (v.allowed(), v.reasons().to_vec()) != expected[i] {
                        mismatches.push(format!(
                            "{host} {topic:?}: {:?} {:?}",
                            v.reasons(),
                            v.error()
                        ));
                    }
                }
                mismatches
            })
        })
        .collect();
    for t in threads {
        let mismatches = t.join().unwrap_or_else(|_| panic!("thread panicked"));
        assert!(
            mismatches.is_empty(),
            "{} mismatches, first: {}",
            mismatches.len(),
            mismatches[0]
        );
    }
    let hits = d.stats().cache_hits.load(Ordering::Relaxed);
    let misses = d.stats().cache_misses.load(Ordering::Relaxed);
    assert_eq!(hits + misses, 16_000);
    assert!(hits > 15_000, "hits {hits}, misses {misses}");
}

#[test]
fn decision_package_is_configurable() {
    let src = source();
    let set = PolicySet::embedded();
    let export = publish(
        &src,
        "ingest.cloud.example.com",
        Zone::External,
        "plant/l1/temp",
    );
    let smart =
        Decider::new(&set, opts("data.manufacturing.smart")).unwrap_or_else(|e| panic!("{e}"));
    let v = smart.decide(&export);
    assert!(!v.allowed());
    assert_eq!(v.reasons(), ["data.manufacturing.smart.deny is true"]);
    let egress =
        Decider::new(&set, opts("data.manufacturing.egress")).unwrap_or_else(|e| panic!("{e}"));
    let v = egress.decide(&export);
    assert!(!v.allowed());
    assert_eq!(
        v.reasons(),
        ["mqtt publish to ingest.cloud.example.com is an export and no allowlist entry permits it"]
    );
    assert!(egress.decide(&local(&src)).allowed());
}

#[test]
fn missing_decision_package_or_allow_rule_is_a_load_error() {
    let set = PolicySet::embedded();
    let err = Decider::new(&set, opts("data.manufacturing.nothing"))
        .map(|_| ())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "decision package data.manufacturing.nothing is not defined by any loaded policy"
    );
    let err = Decider::new(&policy("deny := true"), opts("data.d"))
        .map(|_| ())
        .unwrap_err();
    assert!(err.to_string().contains("has no allow rule"), "{err}");
    let err = Decider::new(&set, opts("manufacturing.smart"))
        .map(|_| ())
        .unwrap_err();
    assert!(
        err.to_string().contains("must name a package under data"),
        "{err}"
    );
}

#[test]
fn cached_verdicts_expire_after_the_ttl() {
    let src = source();
    let d = Decider::new(
        &policy("allow := true"),
        DeciderOptions {
            cache_ttl: Duration::from_millis(20),
            ..opts("data.d")
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let input = local(&src);
    assert!(d.decide(&input).allowed());
    assert!(d.decide(&input).allowed());
    assert_eq!(d.stats().cache_hits.load(Ordering::Relaxed), 1);
    // Well past the time to live: neither the shared cache nor this thread's copy may answer.
    std::thread::sleep(Duration::from_millis(200));
    assert!(d.decide(&input).allowed());
    assert_eq!(d.stats().cache_misses.load(Ordering::Relaxed), 2);
    assert_eq!(d.stats().cache_hits.load(Ordering::Relaxed), 1);
}

#[test]
fn two_deciders_on_one_thread_never_share_verdicts() {
    let src = source();
    let yes = decider("allow := true");
    let no = decider("allow := false");
    let input = local(&src);
    for _ in 0..3 {
        assert!(yes.decide(&input).allowed());
        assert!(!no.decide(&input).allowed());
    }
    assert_eq!(yes.stats().cache_hits.load(Ordering::Relaxed), 2);
    assert_eq!(no.stats().cache_hits.load(Ordering::Relaxed), 2);
}

#[test]
fn mqtt_connects_are_judged_every_time_and_never_cached() {
    let src = source();
    let d = decider("allow if input.target.zone == \"local\"");
    let connect = Input {
        operation: Operation::Connect,
        mqtt: None,
        ..publish(&src, "broker.plant.local", Zone::Local, "")
    };
    assert!(d.decide(&connect).allowed());
    assert!(d.decide(&connect).allowed());
    // One entry per client would live as long as its session for no gain.
    assert_eq!(d.stats().cache_misses.load(Ordering::Relaxed), 2);
    assert_eq!(d.stats().cache_hits.load(Ordering::Relaxed), 0);
}

/// Counters are kept per thread (striped); what is exported must still be every thread's sum,
/// and each thread's own engine must follow a reload.
#[test]
fn decisions_on_many_threads_are_all_counted_and_follow_a_reload() {
    let d = decider("allow if input.target.zone == \"local\"");
    const THREADS: u64 = 6;
    const EACH: u64 = 50;
    let run = |expect: bool| {
        std::thread::scope(|s| {
            for _ in 0..THREADS {
                s.spawn(|| {
                    let src = source();
                    for _ in 0..EACH {
                        assert_eq!(d.decide(&local(&src)).allowed(), expect);
                    }
                });
            }
        });
    };
    run(true);
    let stats = d.stats();
    let misses = stats.cache_misses.load(Ordering::Relaxed);
    let hits = stats.cache_hits.load(Ordering::Relaxed);
    assert_eq!(hits + misses, THREADS * EACH, "every decision counted");
    assert_eq!(
        stats.eval_latency.snapshot().1,
        misses,
        "every evaluation timed"
    );
    // This thread's engine, made before the reload, must be replaced by it.
    let src = source();
    assert!(d.decide_uncached(&local(&src)).allowed());
    d.reload(&policy("default allow := false"), "r2")
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !d.decide_uncached(&local(&src)).allowed(),
        "the old engine judged"
    );
    run(false);
}
