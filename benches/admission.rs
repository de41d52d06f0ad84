//! Admission latency with 50 ConstraintTemplates and 50 Constraints loaded (generated in five
//! styles of the gatekeeper library: required labels, allowed registries, resource limits,
//! privileged containers, proxy environment), all matching the reviewed Pod.
//!
//! Prints P50/P99 of: raw regorus evaluation of the same 50 templates (the baseline: engines
//! ready, input already a regorus value), the in-process review (`Webhook::admit`: JSON parse,
//! match, evaluate, answer), and the real `sluice webhook` binary over TLS (one keep-alive
//! connection, requests in sequence). Budget (DESIGN.md): P99 ≤ 2 ms.
//!
//! Run: cargo bench --bench admission

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value as Json, json};
use sluice::admission::inventory::Inventory;
use sluice::admission::policies::Policies;
use sluice::admission::service::Webhook;

const TEMPLATES: usize = 50;
const WARMUP: usize = 200;
const SAMPLES: usize = 3000;

const LIB: &str = r#"package lib.bench.pods
containers(obj) = cs {
  spec := object.get(obj, "spec", {})
  cs := array.concat(object.get(spec, "containers", []), object.get(spec, "initContainers", []))
}
"#;

fn rego(style: usize, i: usize) -> String {
    let pkg = format!("package sluicebench{i}\nimport data.lib.bench.pods\n");
    let body = match style {
        0 => {
            r#"violation[{"msg": msg}] {
  provided := {l | input.review.object.metadata.labels[l]}
  required := {l | l := input.parameters.labels[_]}
  missing := required - provided
  count(missing) > 0
  msg := sprintf("missing labels %v", [missing])
}"#
        }
        1 => {
            r#"violation[{"msg": msg}] {
  c := pods.containers(input.review.object)[_]
  not allowed(c.image)
  msg := sprintf("container %v image %v is not from an allowed registry", [c.name, c.image])
}
allowed(image) { startswith(image, input.parameters.registries[_]) }"#
        }
        2 => {
            r#"violation[{"msg": msg}] {
  c := pods.containers(input.review.object)[_]
  not c.resources.limits.memory
  msg := sprintf("container %v has no memory limit", [c.name])
}
violation[{"msg": msg}] {
  c := pods.containers(input.review.object)[_]
  not c.resources.limits.cpu
  msg := sprintf("container %v has no cpu limit", [c.name])
}"#
        }
        3 => {
            r#"violation[{"msg": msg}] {
  c := pods.containers(input.review.object)[_]
  object.get(object.get(c, "securityContext", {}), "privileged", false) == true
  msg := sprintf("container %v is privileged", [c.name])
}"#
        }
        _ => {
            r#"violation[{"msg": msg}] {
  c := input.review.object.spec.containers[_]
  c.name != "sluice"
  not has_env(c, "HTTPS_PROXY")
  msg := sprintf("container %v has no HTTPS_PROXY", [c.name])
}
has_env(c, name) { c.env[_].name == name }"#
        }
    };
    format!("{pkg}\n{body}\n")
}

fn indent(s: &str, n: usize) -> String {
    s.lines()
        .map(|l| format!("{}{l}", " ".repeat(n)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Writes 50 templates and constraints as YAML, one file each, like a real policy repository.
fn generate(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for i in 0..TEMPLATES {
        let style = i % 5;
        let kind = format!("SluiceBench{i}");
        let template = format!(
            "apiVersion: templates.gatekeeper.sh/v1\nkind: ConstraintTemplate\nmetadata:\n  name: {}\nspec:\n  crd:\n    spec:\n      names:\n        kind: {kind}\n  targets:\n    - target: admission.k8s.gatekeeper.sh\n      rego: |\n{}\n      libs:\n        - |\n{}\n",
            kind.to_lowercase(),
            indent(&rego(style, i), 8),
            indent(LIB, 10)
        );
        std::fs::write(dir.join(format!("t{i:02}.yaml")), template)?;
        let params = match style {
            0 => "{labels: [app, line]}",
            1 => "{registries: [\"registry.plant.local/\"]}",
            _ => "{}",
        };
        let constraint = format!(
            "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: {kind}\nmetadata:\n  name: bench-{i}\nspec:\n  match:\n    kinds:\n      - apiGroups: [\"\"]\n        kinds: [\"Pod\"]\n      - apiGroups: [apps]\n        kinds: [Deployment]\n    excludedNamespaces: [kube-system]\n  parameters: {params}\n"
        );
        std::fs::write(dir.join(format!("c{i:02}.yaml")), constraint)?;
    }
    Ok(())
}

fn pod() -> Json {
    let container = |name: &str| {
        json!({"name": name, "image": format!("registry.plant.local/line-1/{name}:1.0"),
               "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}},
               "env": [{"name": "HTTP_PROXY", "value": "http://127.0.0.1:3128"},
                       {"name": "HTTPS_PROXY", "value": "http://127.0.0.1:3128"}]})
    };
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "bench", "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "name": "press-7", "namespace": "line-1", "operation": "CREATE",
        "userInfo": {"username": "plant-admin"},
        "object": {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "press-7", "namespace": "line-1",
                                "labels": {"app": "press", "line": "1"}},
                   "spec": {"containers": [container("processor"), container("historian"), container("sluice")]}}}})
}

struct Stats {
    p50: Duration,
    p99: Duration,
}

fn stats(mut v: Vec<Duration>) -> Stats {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
    Stats {
        p50: at(0.50),
        p99: at(0.99),
    }
}

fn measure(mut f: impl FnMut()) -> Stats {
    for _ in 0..WARMUP {
        f();
    }
    let mut v = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let t = Instant::now();
        f();
        v.push(t.elapsed());
    }
    stats(v)
}

fn us(d: Duration) -> String {
    format!("{:8.1} µs", d.as_secs_f64() * 1e6)
}

fn main() -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("sluice-bench-admission-{}", std::process::id()));
    let policy_dir = dir.join("policies");
    generate(&policy_dir).map_err(|e| e.to_string())?;
    let body = serde_json::to_vec(&pod()).map_err(|e| e.to_string())?;

    let load = Instant::now();
    let policies = Policies::load(&[&policy_dir], Inventory::new());
    let load_time = load.elapsed();
    if !policies.problems.is_empty() || policies.constraints.len() != TEMPLATES {
        return Err(format!(
            "generated policies did not load: {:?}",
            policies.problems
        ));
    }

    // Baseline: raw regorus, the same templates, input prepared once.
    let request = pod()["request"].clone();
    let review = regorus::Value::from_json_str(&request.to_string()).map_err(|e| e.to_string())?;
    let mut engines: Vec<(regorus::Engine, String, regorus::Value)> = policies
        .constraints
        .iter()
        .map(|(c, idx)| {
            let t = &policies.templates[*idx];
            (
                t.engine(),
                t.template.violation_rule.clone(),
                c.parameters.clone(),
            )
        })
        .collect();
    let mut violations = 0usize;
    let raw = measure(|| {
        for (engine, rule, params) in engines.iter_mut() {
            let mut input = std::collections::BTreeMap::new();
            input.insert(regorus::Value::from("review"), review.clone());
            input.insert(regorus::Value::from("parameters"), params.clone());
            engine.set_input(regorus::Value::from(input));
            if let Ok(regorus::Value::Set(s)) = engine.eval_rule(rule.clone()) {
                violations += s.len();
            }
        }
    });

    // In process: the webhook's whole review path minus the network.
    let webhook = Webhook::new(policies, vec!["kube-system".into()], 3 << 20);
    let (status, answer) = webhook.admit(&body);
    if status != 200 || answer["response"]["allowed"] != json!(true) {
        return Err(format!("the bench review should be allowed: {answer}"));
    }
    let in_process = measure(|| {
        let _ = webhook.admit(&body);
    });
    // The same with the binary's evaluation time limit (webhook.eval_timeout, 1s by default).
    let mut limited = Policies::load(&[&policy_dir], Inventory::new());
    limited.set_eval_timeout(Duration::from_secs(1));
    let limited = Webhook::new(limited, vec!["kube-system".into()], 3 << 20);
    let in_process_limited = measure(|| {
        let _ = limited.admit(&body);
    });

    // Over TLS: the real binary, one keep-alive connection.
    let over_tls = over_tls(&dir, &policy_dir, &body)?;

    println!(
        "admission: {TEMPLATES} templates + {TEMPLATES} constraints (load {:.1} ms), Pod with 3 containers matching all, {SAMPLES} reviews each, {violations} violations (expected 0)",
        load_time.as_secs_f64() * 1e3
    );
    let line = |name: &str, s: &Stats| {
        println!(
            "  {name:<44} P50 {}  P99 {}  ({:.2}x / {:.2}x baseline)",
            us(s.p50),
            us(s.p99),
            s.p50.as_secs_f64() / raw.p50.as_secs_f64(),
            s.p99.as_secs_f64() / raw.p99.as_secs_f64()
        )
    };
    line("baseline: raw regorus, 50 evaluations", &raw);
    line("in-process review (Webhook::admit)", &in_process);
    line("the same, with eval_timeout 1s", &in_process_limited);
    line("sluice webhook over TLS (real binary)", &over_tls);
    common::budget_row(
        &format!("admission review, {TEMPLATES} templates, over TLS, P99"),
        &format!("{:.2} ms", over_tls.p99.as_secs_f64() * 1e3),
        &format!("raw regorus P99 {:.2} ms", raw.p99.as_secs_f64() * 1e3),
        &format!("{:.2}x", over_tls.p99.as_secs_f64() / raw.p99.as_secs_f64()),
        "≤ 2 ms",
        over_tls.p99 <= Duration::from_millis(2),
    );
    println!(
        "  budget P99 <= 2 ms over TLS: {}",
        if over_tls.p99 <= Duration::from_millis(2) {
            "met"
        } else {
            "MISSED"
        }
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn over_tls(dir: &Path, policy_dir: &Path, body: &[u8]) -> Result<Stats, String> {
    use rcgen::{CertificateParams, KeyPair};
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .and_then(|p| p.self_signed(&key))
        .map_err(|e| e.to_string())?;
    let (cert_file, key_file) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&cert_file, cert.pem()).map_err(|e| e.to_string())?;
    std::fs::write(&key_file, key.serialize_pem()).map_err(|e| e.to_string())?;
    let cfg = dir.join("config.yaml");
    std::fs::write(
        &cfg,
        format!(
            "log: {{format: json, level: warn}}\nwebhook:\n  listen: 127.0.0.1:0\n  tls: {{cert: {}, key: {}}}\n  paths: [{}]\n",
            cert_file.display(),
            key_file.display(),
            policy_dir.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    // The address comes from the startup log line, which is at info level.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["webhook", "-c"])
        .arg(&cfg)
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let addr: std::net::SocketAddr = loop {
        let line = lines
            .next()
            .ok_or("webhook exited before listening")?
            .map_err(|e| e.to_string())?;
        if line.contains("webhook listening") {
            let v: Json = serde_json::from_str(&line).map_err(|e| e.to_string())?;
            break v["addr"]
                .as_str()
                .and_then(|a| a.parse().ok())
                .ok_or("no addr")?;
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let result = rt.block_on(async {
        let config = sluice::proxy::tls::client_config(&cert_file).map_err(|e| e.to_string())?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let _ = tcp.set_nodelay(true);
        let name =
            rustls_pki_types::ServerName::try_from("localhost").map_err(|e| e.to_string())?;
        let tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let mut samples = Vec::with_capacity(SAMPLES);
        for i in 0..WARMUP + SAMPLES {
            let req = http::Request::post("/v1/admit")
                .header("host", "localhost")
                .header("content-type", "application/json")
                .body(Full::new(Bytes::copy_from_slice(body)))
                .map_err(|e| e.to_string())?;
            let t = Instant::now();
            let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            let d = t.elapsed();
            if i == 0 && !bytes.windows(14).any(|w| w == b"\"allowed\":true") {
                return Err(format!(
                    "unexpected answer: {}",
                    String::from_utf8_lossy(&bytes)
                ));
            }
            if i >= WARMUP {
                samples.push(d);
            }
        }
        Ok::<_, String>(stats(samples))
    });
    let _ = child.kill();
    let _ = child.wait();
    result
}
