//! Watched policy directories and bundle files, and the generation guarantee of the cache.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use sluice::policy::bundle::source::PolicySources;
use sluice::policy::bundle::status::PolicyStatus;
use sluice::policy::{Decider, DeciderOptions, PolicySet};
use support::*;

fn write_policy(dir: &std::path::Path, ports: &[u16]) {
    let _ = std::fs::create_dir_all(dir.join("manufacturing"));
    let _ = std::fs::create_dir_all(dir.join("gate"));
    std::fs::write(dir.join("manufacturing/smart.rego"), POLICY).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.join("gate/data.json"),
        serde_json::json!({ "ports": ports }).to_string(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
}

struct Watched {
    decider: Decider,
    status: Arc<PolicyStatus>,
    _handle: sluice::policy::bundle::source::SourceHandle,
}

fn watch(yaml: &str) -> Watched {
    let cfg = policy_config(yaml);
    let sources = PolicySources::from_config(&cfg).unwrap_or_else(|e| panic!("{e}"));
    let (startup, decider, status) = sources
        .open(DeciderOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let handle = sources
        .start(decider.clone(), status.clone(), &startup)
        .unwrap_or_else(|e| panic!("{e}"));
    Watched {
        decider,
        status,
        _handle: handle,
    }
}

#[test]
fn a_change_in_a_watched_directory_is_activated() {
    let dir = TempDir::new("watch-change");
    let policies = dir.join("policies");
    write_policy(&policies, &[1883]);
    let w = watch(&format!(
        "policy:\n  eval_timeout: 5s\n  paths: [{}]\n  watch: true\n",
        policies.display()
    ));
    let first = w.decider.revision();
    assert!(first.starts_with("sha256:"), "{first}");
    assert!(allows(&w.decider, 1883));
    write_policy(&policies, &[8883]);
    wait_until(WAIT, "the new data active", || allows(&w.decider, 8883));
    assert!(!allows(&w.decider, 1883));
    assert_ne!(w.decider.revision(), first);
    assert_eq!(w.status.to_json()["bundles"]["sluice"]["origin"], "paths");
}

#[test]
fn a_broken_module_is_reported_and_the_old_policy_keeps_enforcing() {
    let dir = TempDir::new("watch-broken");
    let policies = dir.join("policies");
    write_policy(&policies, &[1883]);
    let w = watch(&format!(
        "policy:\n  eval_timeout: 5s\n  paths: [{}]\n  watch: true\n",
        policies.display()
    ));
    let rego = policies.join("manufacturing/smart.rego");
    std::fs::write(
        &rego,
        "package manufacturing.smart\n\nallow if {\n  input.x ==\n}\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let prefix = format!(
        "policy.paths {}: {}:5:1: ",
        policies.display(),
        rego.display()
    );
    wait_until(WAIT, "the compile error reported", || {
        w.status
            .last_error()
            .is_some_and(|e| e.starts_with(&prefix))
    });
    assert_eq!(w.decider.generation(), 1);
    assert!(allows(&w.decider, 1883));
    assert_eq!(w.status.failures.load(Ordering::Relaxed), 1);

    write_policy(&policies, &[8883]);
    wait_until(WAIT, "the fixed policy active", || allows(&w.decider, 8883));
    assert_eq!(w.status.last_error(), None);
}

#[test]
fn a_deleted_policy_directory_is_reported_once_and_the_old_policy_keeps_enforcing() {
    let dir = TempDir::new("watch-deleted");
    let policies = dir.join("policies");
    write_policy(&policies, &[1883]);
    let w = watch(&format!(
        "policy:\n  eval_timeout: 5s\n  paths: [{}]\n  watch: true\n",
        policies.display()
    ));
    std::fs::remove_dir_all(&policies).unwrap_or_else(|e| panic!("{e}"));
    let expected = format!("{}: no such file or directory", policies.display());
    wait_until(WAIT, "the deletion reported", || {
        w.status.last_error().as_deref() == Some(expected.as_str())
    });
    assert!(allows(&w.decider, 1883));
    // Several watch rounds later it is still one failure: reported once, not every 250 ms.
    std::thread::sleep(std::time::Duration::from_millis(1200));
    assert_eq!(w.status.failures.load(Ordering::Relaxed), 1);
    assert!(allows(&w.decider, 1883));

    write_policy(&policies, &[8883]);
    wait_until(WAIT, "the recreated policy active", || {
        allows(&w.decider, 8883)
    });
}

#[test]
fn a_watched_bundle_file_is_reloaded_when_replaced() {
    let dir = TempDir::new("watch-file");
    let file = dir.join("plant.tar.gz");
    std::fs::write(&file, tar_gz(&bundle_files("f1", &[1883]))).unwrap_or_else(|e| panic!("{e}"));
    let w = watch(&format!(
        "policy:\n  eval_timeout: 5s\n  bundle: {{file: {}}}\n",
        file.display()
    ));
    assert_eq!(w.decider.revision(), "f1");
    assert!(w.status.bundles_ready());
    std::fs::write(&file, b"garbage").unwrap_or_else(|e| panic!("{e}"));
    let expected = format!(
        "bundle file {}: not a bundle: expected a gzip-compressed tarball (.tar.gz)",
        file.display()
    );
    wait_until(WAIT, "the corrupt file reported", || {
        w.status.last_error().as_deref() == Some(expected.as_str())
    });
    assert_eq!(w.decider.revision(), "f1");
    std::fs::write(&file, tar_gz(&bundle_files("f2", &[8883]))).unwrap_or_else(|e| panic!("{e}"));
    wait_until(WAIT, "f2 active", || w.decider.revision() == "f2");
    assert!(allows(&w.decider, 8883));
}

fn ports_policy(ports: &[u16]) -> PolicySet {
    PolicySet {
        modules: vec![sluice::policy::Module {
            path: "p.rego".into(),
            text: POLICY.into(),
        }],
        data: serde_json::json!({"gate": {"ports": ports}}),
        rego_v0: false,
    }
}

#[test]
fn the_cache_never_serves_a_verdict_of_an_older_generation() {
    // Odd generations allow port 1883, even ones deny it.
    let allow = ports_policy(&[1883]);
    let deny = ports_policy(&[]);
    let d = Decider::new(&allow, DeciderOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    assert!(allows(&d, 1883));
    assert!(allows(&d, 1883), "second call is a cache hit");
    assert!(d.stats().cache_hits.load(Ordering::Relaxed) >= 1);

    let stop = Arc::new(AtomicBool::new(false));
    let checked = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (d, stop, checked) = (d.clone(), stop.clone(), checked.clone());
            std::thread::spawn(move || {
                let s = source();
                while !stop.load(Ordering::Relaxed) {
                    let before = d.generation();
                    let v = d.decide(&publish(
                        &s,
                        "broker.plant.local",
                        1883,
                        sluice::policy::Zone::Local,
                    ));
                    assert!(
                        v.generation() >= before,
                        "verdict of generation {} served after generation {before} was current",
                        v.generation()
                    );
                    assert_eq!(
                        v.allowed(),
                        v.generation() % 2 == 1,
                        "generation {}",
                        v.generation()
                    );
                    checked.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for i in 0..40 {
        let set = if i % 2 == 0 { &deny } else { &allow };
        d.reload(set, &format!("g{}", i + 2))
            .unwrap_or_else(|e| panic!("{e}"));
        // Right after a reload, the very next decision belongs to the new generation.
        assert_eq!(allows(&d, 1883), d.generation() % 2 == 1);
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        assert!(w.join().is_ok(), "a worker saw a stale verdict");
    }
    assert!(checked.load(Ordering::Relaxed) > 0);
}
