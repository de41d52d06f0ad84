//! The deployment in `deploy/` is valid and consistent with the binary: manifests validate
//! against Kubernetes schemas, the ConfigMaps' config and policies are accepted by `sluice serve`,
//! `sluice webhook`, `sluice test` and `sluice verify`, and every metric the dashboard and the
//! alerts name exists in a live scrape that `promtool check metrics` accepts.
//!
//! Needs: `kubernetes-validate` (PyPI), `promtool` (Debian `prometheus`), `curl`, `mosquitto`
//! and `mosquitto_pub`; `scripts/test` installs them.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value as Json;
use support::{
    Broker, Error, Scrape, Sluice, TempDir, TestResult, Webhook, free_port, mosquitto_pub,
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sluice(args: &[&str]) -> Result<(Option<i32>, String, String), Error> {
    let out = support::sluice(args);
    Ok((Some(out.code), out.stdout, out.stderr))
}

fn tool(name: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<(bool, String), Error> {
    use std::io::Write;
    let mut child = Command::new(name)
        .args(args)
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{name}: {e} (scripts/test installs it)"))?;
    if let (Some(data), Some(mut input)) = (stdin, child.stdin.take()) {
        input.write_all(data)?;
    }
    let out = child.wait_with_output()?;
    Ok((
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            yaml_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "yaml") {
            out.push(path);
        }
    }
    out.sort();
    Ok(())
}

fn load_yaml(path: &Path) -> Result<Json, Error> {
    Ok(sluice::policy::loader::parse_yaml(
        &std::fs::read_to_string(path)?,
    )?)
}

#[test]
fn kubernetes_manifests_validate_against_the_schemas() -> TestResult {
    let mut files = Vec::new();
    yaml_files(&root().join("deploy/k3s"), &mut files)?;
    // Kubernetes objects only: kustomizations, sluice configs and Gatekeeper CRs (checked by
    // `sluice verify` below) have no schema in the Kubernetes API.
    let objects: Vec<String> = files
        .iter()
        .filter(|f| {
            load_yaml(f).is_ok_and(|doc| {
                let api = doc["apiVersion"].as_str().unwrap_or("");
                !api.is_empty() && !api.contains("kustomize") && !api.contains("gatekeeper.sh")
            })
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(objects.len() >= 7, "found only {objects:?}");
    // Kubernetes 1.31: the oldest release K3s still ships patches for (native sidecars need 1.29).
    let mut args = vec![
        "-m",
        "kubernetes_validate",
        "--strict",
        "--quiet",
        "-k",
        "1.31.0",
    ];
    args.extend(objects.iter().map(String::as_str));
    let (ok, out) = tool("python3", &args, None)?;
    assert!(ok, "kubernetes-validate failed:\n{out}");
    Ok(())
}

#[test]
fn kustomizations_name_only_files_that_exist() -> TestResult {
    let mut files = Vec::new();
    yaml_files(&root().join("deploy/k3s"), &mut files)?;
    let mut checked = 0;
    for k in files.iter().filter(|f| f.ends_with("kustomization.yaml")) {
        let doc = load_yaml(k)?;
        let dir = k.parent().ok_or("no parent")?;
        let mut named: Vec<String> = Vec::new();
        for r in doc["resources"].as_array().cloned().unwrap_or_default() {
            named.push(r.as_str().unwrap_or_default().to_string());
        }
        for g in doc["configMapGenerator"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            for f in g["files"].as_array().cloned().unwrap_or_default() {
                named.push(f.as_str().unwrap_or_default().to_string());
            }
        }
        for n in named {
            assert!(dir.join(&n).exists(), "{}: {n} does not exist", k.display());
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} references checked");
    Ok(())
}

#[test]
fn configmap_policies_are_the_shipped_ones() -> TestResult {
    let r = root();
    for f in ["smart.rego", "egress.rego", "data.json"] {
        assert_eq!(
            std::fs::read(r.join("deploy/k3s/processor/policies").join(f))?,
            std::fs::read(r.join("policies/manufacturing").join(f))?,
            "deploy/k3s/processor/policies/{f} differs from policies/manufacturing/{f}"
        );
    }
    for d in [
        "sidecar",
        "edge-nodes",
        "host-networking",
        "egress-proxy",
        "net-admin",
        "external-name",
        "intercept-bypass",
    ] {
        for kind in ["template", "constraint"] {
            let copy = r.join(format!("deploy/k3s/webhook/gatekeeper/{d}-{kind}.yaml"));
            let shipped = r.join(format!("policies/gatekeeper/{d}/{kind}.yaml"));
            assert_eq!(
                std::fs::read(&copy)?,
                std::fs::read(&shipped)?,
                "{} differs from {}",
                copy.display(),
                shipped.display()
            );
        }
    }
    Ok(())
}

/// The policies as the ConfigMap mounts them (flat files under policies/manufacturing), with
/// the shipped tests beside them.
fn mounted_policies(dir: &Path) -> Result<PathBuf, Error> {
    let pol = dir.join("policies/manufacturing");
    std::fs::create_dir_all(&pol)?;
    for f in std::fs::read_dir(root().join("deploy/k3s/processor/policies"))? {
        let f = f?.path();
        std::fs::copy(&f, pol.join(f.file_name().ok_or("no name")?))?;
    }
    Ok(dir.join("policies"))
}

#[test]
fn configmap_policies_pass_sluice_test_and_the_manifests_pass_sluice_verify() -> TestResult {
    let dir = TempDir::new("deploy-policies");
    let mounted = mounted_policies(dir.path())?;
    let tests = mounted.join("manufacturing");
    for t in ["smart_test.rego", "egress_test.rego"] {
        std::fs::copy(root().join("policies/manufacturing").join(t), tests.join(t))?;
    }
    let (code, out, err) = sluice(&["test", &mounted.display().to_string()])?;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.starts_with("PASS: "), "{out}");
    let (code, out, err) = sluice(&["verify", "policies/gatekeeper", "fixtures/deploy"])?;
    assert_eq!(code, Some(0), "{out}{err}");
    Ok(())
}

#[test]
fn alert_rules_pass_promtool() -> TestResult {
    let (ok, out) = tool(
        "promtool",
        &["check", "rules", "deploy/prometheus/alerts.yaml"],
        None,
    )?;
    assert!(ok, "{out}");
    Ok(())
}

/// Every `sluice_*` metric named by the dashboard and the alerts, as its family name.
fn referenced_metrics() -> Result<BTreeSet<String>, Error> {
    let re = regex::Regex::new(r"\bsluice_[a-z_]+")?;
    let mut names = BTreeSet::new();
    for f in [
        "deploy/grafana/sluice.json",
        "deploy/prometheus/alerts.yaml",
    ] {
        let text = std::fs::read_to_string(root().join(f))?;
        for m in re.find_iter(&text) {
            let n = m.as_str();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| n.strip_suffix(s))
                .unwrap_or(n);
            names.insert(family.to_string());
        }
    }
    Ok(names)
}

/// Every exact-match label selector (`metric{label="value"}`) in the dashboard and alerts.
fn referenced_selectors() -> Result<BTreeSet<(String, String)>, Error> {
    let sel = regex::Regex::new(r#"\b(sluice_[a-z_]+)\{([^}]*)\}"#)?;
    let pair = regex::Regex::new(r#"([a-z_]+)="([^"$]*)""#)?;
    let mut out = BTreeSet::new();
    for f in [
        "deploy/grafana/sluice.json",
        "deploy/prometheus/alerts.yaml",
    ] {
        // The dashboard's JSON escapes quotes.
        let text = std::fs::read_to_string(root().join(f))?.replace("\\\"", "\"");
        for c in sel.captures_iter(&text) {
            for p in pair.captures_iter(&c[2]) {
                out.insert((c[1].to_string(), format!("{}=\"{}\"", &p[1], &p[2])));
            }
        }
    }
    Ok(out)
}

/// The `# HELP` names of a Prometheus text scrape.
fn exposed(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter_map(|l| l.strip_prefix("# HELP "))
        .filter_map(|l| l.split(' ').next())
        .map(String::from)
        .collect()
}

/// Starts a process and returns it once `ready` says so; killed on drop.
#[test]
fn deployed_configs_start_and_every_dashboard_and_alert_metric_is_scraped() -> TestResult {
    let dir = TempDir::new("deploy-live");

    // The sidecar's config from the ConfigMap, with loopback ports and the policies mounted here.
    // The plant broker is a local mosquitto; one test-only rule denies a topic (see the fixture).
    let broker = Broker::start();
    let mut cfg = load_yaml(&root().join("deploy/k3s/processor/sluice.yaml"))?;
    let (proxy, admin, mqtt) = (free_port(), free_port(), free_port());
    cfg["http"]["listen"] = format!("127.0.0.1:{proxy}").into();
    cfg["admin"]["listen"] = format!("127.0.0.1:{admin}").into();
    cfg["mqtt"][0]["listen"] = format!("127.0.0.1:{mqtt}").into();
    cfg["mqtt"][0]["upstream"] = broker.addr.to_string().into();
    cfg["intercept"]["listen"] = format!("127.0.0.1:{}", free_port()).into();
    cfg["intercept"]["dns"]["listen"] = format!("127.0.0.1:{}", free_port()).into();
    let mounted = mounted_policies(dir.path())?;
    std::fs::copy(
        root().join("fixtures/deploy/deny_test_topic.rego"),
        mounted.join("manufacturing/deny_test_topic.rego"),
    )?;
    cfg["policy"]["paths"] = serde_json::json!([mounted]);
    // One export bridge (to a remote that is down), so that the bridge families have series.
    cfg["bridges"] = serde_json::json!([{
        "name": "cloud",
        "local": {"broker": broker.addr.to_string()},
        "remote": {"broker": "127.0.0.2:1"},
        "topics": ["plant/+/aggregates/#"],
        "spool": {"path": dir.path().join("spool.db").display().to_string()},
    }]);
    if let Some(dl) = cfg.get_mut("decision_log") {
        dl["path"] = dir.path().join("decisions.db").display().to_string().into();
    }
    let gw = Sluice::serve(&serde_json::to_string(&cfg)?);

    // Traffic, so that every labelled family has samples: allowed, denied (an external name is
    // judged before any lookup), a cache hit.
    let proxy_url = format!("http://127.0.0.1:{proxy}");
    let local = format!("http://127.0.0.1:{admin}/healthz");
    for url in [
        local.as_str(),
        local.as_str(),
        "http://data-export.example.com/upload",
    ] {
        let _ = tool(
            "curl",
            &["-s", "-o", "/dev/null", "-x", &proxy_url, url],
            None,
        )?;
    }
    let mqtt_addr = format!("127.0.0.1:{mqtt}").parse()?;
    for topic in ["plant/line1/press7/temp", "sluice-test/denied"] {
        let _ = mosquitto_pub(mqtt_addr, &["-V", "5", "-q", "1", "-t", topic, "-m", "1"]);
    }
    let scrape = gw.metrics();
    let (ok, out) = tool("promtool", &["check", "metrics"], Some(scrape.as_bytes()))?;
    assert!(ok, "promtool check metrics:\n{out}\n{scrape}");

    // The webhook's config from its ConfigMap, with a certificate from `sluice cert`.
    let certs = dir.path().join("certs");
    let (code, _, err) = sluice(&[
        "cert",
        "--dns",
        "localhost",
        "--out",
        &certs.display().to_string(),
    ])?;
    assert_eq!(code, Some(0), "{err}");
    let mut wcfg = load_yaml(&root().join("deploy/k3s/webhook/webhook.yaml"))?;
    let wport = free_port();
    wcfg["webhook"]["listen"] = format!("127.0.0.1:{wport}").into();
    wcfg["webhook"]["tls"]["cert"] = certs.join("tls.crt").display().to_string().into();
    wcfg["webhook"]["tls"]["key"] = certs.join("tls.key").display().to_string().into();
    wcfg["webhook"]["paths"] = serde_json::json!([root().join("deploy/k3s/webhook/gatekeeper")]);
    let _hook = Webhook::launch(
        TempDir::new("deploy-webhook"),
        &serde_json::to_string(&wcfg)?,
        certs.join("ca.crt"),
    );
    let ca = certs.join("ca.crt").display().to_string();
    let url = format!("https://localhost:{wport}");
    let curl_https = |path: &str| {
        tool(
            "curl",
            &["-sf", "--cacert", &ca, &format!("{url}{path}")],
            None,
        )
    };
    // Ready by the launcher's own probe; curl must agree.
    let (ok, ready) = curl_https("/readyz")?;
    assert!(ok, "{ready}");
    let (ok, answer) = tool(
        "curl",
        &[
            "-sf",
            "--cacert",
            &ca,
            "-H",
            "content-type: application/json",
            "--data-binary",
            "@fixtures/deploy/review.json",
            &format!("{url}/v1/admit"),
        ],
        None,
    )?;
    assert!(ok, "{answer}");
    let answer: Json = serde_json::from_str(&answer)?;
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    let (ok, webhook_scrape) = curl_https("/metrics")?;
    assert!(ok, "{webhook_scrape}");
    let (ok, out) = tool(
        "promtool",
        &["check", "metrics"],
        Some(webhook_scrape.as_bytes()),
    )?;
    assert!(ok, "promtool check metrics (webhook):\n{out}");

    // Label values the queries select on must exist too (`result="failure"`, `verdict="deny"`).
    let both = format!("{scrape}\n{webhook_scrape}");
    let unmatched: Vec<String> = referenced_selectors()?
        .into_iter()
        .filter(|(metric, label)| {
            !both
                .lines()
                .any(|l| l.starts_with(metric.as_str()) && l.contains(label.as_str()))
        })
        .map(|(m, l)| format!("{m}{{{l}}}"))
        .collect();
    assert!(
        unmatched.is_empty(),
        "selectors with no matching series: {unmatched:?}"
    );

    let mut available = exposed(&scrape);
    available.extend(exposed(&webhook_scrape));
    let missing: Vec<_> = referenced_metrics()?
        .into_iter()
        .filter(|m| !available.contains(m))
        .collect();
    assert!(
        missing.is_empty(),
        "named in deploy/ but not exposed: {missing:?}\nexposed: {available:?}"
    );
    Ok(())
}

#[test]
fn dashboard_is_valid_json_and_every_panel_queries_something() -> TestResult {
    let d: Json = serde_json::from_str(&std::fs::read_to_string(
        root().join("deploy/grafana/sluice.json"),
    )?)?;
    let panels = d["panels"].as_array().ok_or("no panels")?;
    assert!(panels.len() >= 10);
    for p in panels {
        let targets = p["targets"].as_array().ok_or("no targets")?;
        assert!(!targets.is_empty(), "panel {} has no query", p["title"]);
        for t in targets {
            assert!(
                t["expr"].as_str().is_some_and(|e| e.contains("sluice_")),
                "{t}"
            );
        }
    }
    Ok(())
}
