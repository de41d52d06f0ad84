//! The real `sluice webhook` over real TLS with the shipped (embedded) policies: full
//! AdmissionReview answers, probes and metrics, bad input, and shutdown.

mod support;

use serde_json::json;
use support::{Scrape, Webhook, denied_by, fixture, review};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denies_a_plant_data_pod_that_bypasses_the_sidecar_with_gatekeepers_answer()
-> Result<(), String> {
    let hook = Webhook::start("")?;
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "press-7-analytics", "namespace": "line-1",
                     "labels": {"sluice.io/processes-plant-data": "true"}},
        "spec": {"hostNetwork": true, "nodeSelector": {"node-type": "edge"},
                 "containers": [{"name": "analytics", "image": "registry.plant.local/line-1/analytics:0.9",
                                 "env": [{"name": "HTTP_PROXY", "value": "http://127.0.0.1:3128"},
                                         {"name": "HTTPS_PROXY", "value": "http://127.0.0.1:3128"}]}]}
    });
    let (status, answer) = hook
        .post(
            "/v1/admit",
            &review(
                "705ab4f5-6393-11e8-b7cc-42010a800002",
                "CREATE",
                Some(pod),
                None,
            ),
        )
        .await?;
    assert_eq!(status, 200);
    assert_eq!(
        answer,
        json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {
                "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                "allowed": false,
                "status": {
                    "metadata": {},
                    "code": 403,
                    "reason": "Forbidden",
                    "message": "[plant-data-no-intercept-bypass] container analytics of Pod press-7-analytics must set securityContext.runAsUser: its image's default user could be sluice's UID 65532\n[plant-data-no-intercept-bypass] Pod press-7-analytics processes plant data but applies no interception rules: add an init container \"sluice-init\" running the sluice image with `iptables -c FILE --apply`\n[plant-data-no-host-networking] Pod press-7-analytics processes plant data and must not use hostNetwork\n[plant-data-needs-sluice-sidecar] Pod press-7-analytics processes plant data (sluice.io/processes-plant-data=true) but runs no sluice sidecar: add a container named \"sluice\" with the sluice image"
                }
            }
        })
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allows_the_compliant_processor_deployment_on_every_path() -> Result<(), String> {
    let hook = Webhook::start("")?;
    let deployment = fixture("policies/gatekeeper/samples/processor-deployment.yaml");
    for path in ["/v1/admit", "/"] {
        let (status, answer) = hook
            .post(
                path,
                &review("uid-ok", "CREATE", Some(deployment.clone()), None),
            )
            .await?;
        assert_eq!(status, 200);
        assert_eq!(
            answer,
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                   "response": {"uid": "uid-ok", "allowed": true, "status": {"metadata": {}, "code": 200}}})
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exempt_namespaces_are_allowed_without_review() -> Result<(), String> {
    let hook = Webhook::start("    exempt_namespaces: [kube-system, \"plant-ops-*\"]\n")?;
    let mut pod = fixture("policies/gatekeeper/sidecar/samples/pod-without-sidecar.yaml");
    for ns in ["kube-system", "plant-ops-7"] {
        pod["metadata"]["namespace"] = json!(ns);
        let (_, answer) = hook
            .post("/v1/admit", &review("u", "CREATE", Some(pod.clone()), None))
            .await?;
        assert_eq!(
            answer["response"],
            json!({"uid": "u", "allowed": true, "status": {"metadata": {}, "code": 200,
                   "message": "Namespace is set to be ignored by sluice config"}})
        );
    }
    pod["metadata"]["namespace"] = json!("line-1");
    let (_, answer) = hook
        .post("/v1/admit", &review("u", "CREATE", Some(pod), None))
        .await?;
    assert_eq!(denied_by(&answer), vec!["plant-data-needs-sluice-sidecar"]);
    assert_eq!(
        hook.metric("sluice_admission_requests_total{verdict=\"exempt\"}"),
        2.0
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors_and_the_server_keeps_serving() -> Result<(), String> {
    let hook = Webhook::start("    max_body_bytes: 4KiB\n")?;
    let (status, body) = support::request(
        hook.addr,
        &hook.ca,
        "POST",
        "/v1/admit",
        b"{\"kind\":".to_vec(),
    )
    .await?;
    assert_eq!(status, 400);
    assert!(
        body.starts_with(
            "{\"error\":\"malformed AdmissionReview: body is not JSON: EOF while parsing"
        ),
        "{body}"
    );
    let (status, body) = hook.post("/v1/admit", &json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "x"}})).await?;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "malformed AdmissionReview: request has neither object nor oldObject"})
        )
    );
    let (status, body) = hook
        .post("/v1/admit", &json!({"apiVersion": "v1", "kind": "Pod"}))
        .await?;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "malformed AdmissionReview: expected kind AdmissionReview, got \"Pod\""})
        )
    );
    let big = vec![b' '; 5000];
    let (status, body) = support::request(hook.addr, &hook.ca, "POST", "/v1/admit", big).await?;
    assert_eq!(
        (status, body.as_str()),
        (
            413,
            "AdmissionReview larger than webhook.max_body_bytes (4096 bytes)\n"
        )
    );
    let (status, _) = hook.get("/v1/admit").await?;
    assert_eq!(status, 405);
    let (status, _) = hook.get("/nope").await?;
    assert_eq!(status, 404);

    // A client that does not speak TLS: logged, counted, and nothing else changes.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut plain = tokio::net::TcpStream::connect(hook.addr)
            .await
            .map_err(|e| e.to_string())?;
        plain
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(support::WAIT, plain.read_to_end(&mut buf)).await;
    }
    let deployment = fixture("policies/gatekeeper/samples/processor-deployment.yaml");
    let (status, answer) = hook
        .post(
            "/v1/admit",
            &review("after", "CREATE", Some(deployment), None),
        )
        .await?;
    assert_eq!(
        (status, answer["response"]["allowed"].clone()),
        (200, json!(true))
    );
    assert_eq!(
        hook.metric("sluice_admission_errors_total{kind=\"tls_handshake\"}"),
        1.0
    );
    assert_eq!(
        hook.metric("sluice_admission_errors_total{kind=\"bad_request\"}"),
        3.0
    );
    assert_eq!(
        hook.metric("sluice_admission_errors_total{kind=\"body_too_large\"}"),
        1.0
    );
    hook.wait_for_log("TLS handshake failed");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_and_metrics_share_the_tls_listener() -> Result<(), String> {
    let hook = Webhook::start("")?;
    assert_eq!(hook.get("/healthz").await?, (200, "ok\n".to_string()));
    assert_eq!(
        hook.get("/readyz").await?,
        (200, "ready: 7 templates, 7 constraints\n".to_string())
    );
    let pod = fixture("policies/gatekeeper/host-networking/samples/pod-host-network-and-port.yaml");
    hook.post("/v1/admit", &review("m", "CREATE", Some(pod), None))
        .await?;
    let (status, text) = hook.get("/metrics").await?;
    assert_eq!(status, 200);
    for line in [
        "sluice_admission_requests_total{verdict=\"deny\"} 1",
        "sluice_admission_violations_total{constraint_kind=\"SluiceNoHostNetworking\",constraint=\"plant-data-no-host-networking\",enforcement_action=\"deny\"} 2",
        "sluice_admission_review_duration_seconds_count 1",
        "sluice_admission_template_load_errors 0",
        "sluice_admission_templates 7",
        "sluice_admission_constraints 7",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_webhook_cleanly() -> Result<(), String> {
    let mut hook = Webhook::start("")?;
    assert_eq!(hook.get("/healthz").await?.0, 200);
    assert_eq!(hook.terminate(), Some(0));
    hook.wait_for_log("webhook stopped");
    Ok(())
}
