//! Every `spec.match` rule, end to end: one fixture template violates for whatever it is asked
//! about, and each constraint of fixtures/gatekeeper/webhook/match has exactly one criterion, so
//! the `[constraint]` lines of a deny name exactly the constraints that matched.

mod support;

use serde_json::json;
use support::{Webhook, denied_by, review};

fn start() -> Result<Webhook, String> {
    Webhook::start(
        "    exempt_namespaces: []\n    paths: [fixtures/gatekeeper/webhook/match]\n    inventory: fixtures/gatekeeper/webhook/inventory\n",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_labelled_pod_in_a_plant_namespace() -> Result<(), String> {
    let hook = start()?;
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "press-7", "namespace": "line-1",
                     "labels": {"app": "press", "tier": "edge", "sluice.io/processes-plant-data": "true"}}});
    let (_, answer) = hook
        .post("/v1/admit", &review("r1", "CREATE", Some(pod), None))
        .await?;
    // Sorted by constraint name (one kind); excluded-line is out (line-1 is excluded), the
    // Deployment kind, the other namespace patterns and Cluster scope do not match.
    assert_eq!(
        denied_by(&answer),
        vec![
            "c-kinds-anygroup-pod",
            "c-labels",
            "c-labels-doesnotexist",
            "c-labels-exists",
            "c-labels-in",
            "c-name",
            "c-ns-prefix",
            "c-nssel-plant",
            "c-scope-namespaced",
        ]
    );
    assert_eq!(
        answer["response"]["status"]["message"]
            .as_str()
            .map(|m| m.lines().next()),
        Some(Some("[c-kinds-anygroup-pod] matched"))
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_in_an_unlabelled_namespace() -> Result<(), String> {
    let hook = start()?;
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "oven-1", "namespace": "office", "labels": {"app": "oven", "tier": "cloud"}}});
    let (_, answer) = hook
        .post("/v1/admit", &review("r2", "CREATE", Some(deployment), None))
        .await?;
    assert_eq!(
        denied_by(&answer),
        vec![
            "c-excluded-line",
            "c-kinds-deployment",
            "c-labels-doesnotexist",
            "c-scope-namespaced"
        ]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_is_judged_by_its_own_name_and_labels() -> Result<(), String> {
    let hook = start()?;
    let ns = json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "press-lab", "labels": {"plant": "yes"}}});
    let (_, answer) = hook
        .post("/v1/admit", &review("r3", "CREATE", Some(ns), None))
        .await?;
    assert_eq!(
        denied_by(&answer),
        vec![
            "c-excluded-line",
            "c-labels-doesnotexist",
            "c-name",
            "c-ns-infix",
            "c-ns-suffix",
            "c-nssel-plant",
            "c-scope-cluster",
        ]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_selector_without_the_namespace_object_is_a_violation() -> Result<(), String> {
    let hook = start()?;
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x", "namespace": "unknown-ns"}});
    let (_, answer) = hook
        .post("/v1/admit", &review("r4", "CREATE", Some(pod), None))
        .await?;
    assert_eq!(
        denied_by(&answer),
        vec![
            "c-excluded-line",
            "c-kinds-anygroup-pod",
            "c-labels-doesnotexist",
            "c-nssel-plant",
            "c-scope-namespaced"
        ]
    );
    let message = answer["response"]["status"]["message"]
        .as_str()
        .unwrap_or("");
    assert!(
        message.lines().any(|l| l == "[c-nssel-plant] unable to match \"x\": namespace selector for namespace-scoped object but missing Namespace \"unknown-ns\""),
        "{message}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_matches_when_only_the_old_object_matches() -> Result<(), String> {
    let hook = start()?;
    let new = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "oven-2", "namespace": "office", "labels": {"app": "oven"}}});
    let old = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "oven-2", "namespace": "office", "labels": {"app": "press", "tier": "edge"}}});
    let (_, answer) = hook
        .post(
            "/v1/admit",
            &review("r5", "UPDATE", Some(new.clone()), Some(old)),
        )
        .await?;
    assert_eq!(
        denied_by(&answer),
        vec![
            "c-excluded-line",
            "c-kinds-anygroup-pod",
            "c-labels",
            "c-labels-doesnotexist",
            "c-labels-in",
            "c-scope-namespaced"
        ]
    );
    let (_, answer) = hook
        .post("/v1/admit", &review("r5b", "UPDATE", Some(new), None))
        .await?;
    assert_eq!(
        denied_by(&answer),
        vec![
            "c-excluded-line",
            "c-kinds-anygroup-pod",
            "c-labels-doesnotexist",
            "c-scope-namespaced"
        ]
    );
    Ok(())
}
