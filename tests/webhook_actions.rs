//! Enforcement actions (deny, warn, dryrun, anything else skipped), DELETE reviews, and what
//! the webhook does with broken policies when told to skip them (`on_template_error: skip`):
//! report them at load, count them, keep enforcing the rest.

mod support;

use serde_json::json;
use support::{Scrape, Webhook, review};

fn start() -> Result<Webhook, String> {
    Webhook::start(
        "    paths: [fixtures/gatekeeper/webhook/actions]\n    on_template_error: skip\n",
    )
}

fn pod(name: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "line-1"}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warn_allows_with_warnings_and_status_299() -> Result<(), String> {
    let hook = start()?;
    let (_, answer) = hook
        .post(
            "/v1/admit",
            &review("w", "CREATE", Some(pod("cam-warn")), None),
        )
        .await?;
    assert_eq!(
        answer["response"],
        json!({"uid": "w", "allowed": true, "status": {"metadata": {}, "code": 299},
               "warnings": ["[warn-cameras] cameras should not be here"]})
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_and_warn_together_deny_and_still_warn() -> Result<(), String> {
    let hook = start()?;
    let (_, answer) = hook
        .post(
            "/v1/admit",
            &review("dw", "CREATE", Some(pod("deny-cam-warn")), None),
        )
        .await?;
    assert_eq!(
        answer["response"],
        json!({"uid": "dw", "allowed": false,
               "status": {"metadata": {}, "code": 403, "reason": "Forbidden", "message": "[deny-by-name] refused"},
               "warnings": ["[warn-cameras] cameras should not be here"]})
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dryrun_allows_but_counts_and_logs() -> Result<(), String> {
    let hook = start()?;
    let (_, answer) = hook
        .post(
            "/v1/admit",
            &review("d", "CREATE", Some(pod("trial-dry")), None),
        )
        .await?;
    assert_eq!(
        answer["response"],
        json!({"uid": "d", "allowed": true, "status": {"metadata": {}, "code": 200}})
    );
    assert_eq!(
        hook.metric("sluice_admission_violations_total{constraint_kind=\"SluiceFixtureAlways\",constraint=\"dryrun-trial\",enforcement_action=\"dryrun\"}"),
        1.0
    );
    assert_eq!(
        hook.metric("sluice_admission_requests_total{verdict=\"allow\"}"),
        1.0
    );
    let line = hook.wait_for_log("\"enforcement_action\":\"dryrun\"");
    assert!(line.contains("would be refused"), "{line}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_reviews_the_old_object() -> Result<(), String> {
    let hook = start()?;
    let (_, answer) = hook
        .post(
            "/v1/admit",
            &review("del", "DELETE", None, Some(pod("deny-old"))),
        )
        .await?;
    assert_eq!(answer["response"]["allowed"], json!(false));
    assert_eq!(
        answer["response"]["status"]["message"],
        json!("[deny-by-name] refused")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_policies_are_reported_at_load_and_the_rest_keep_enforcing() -> Result<(), String> {
    let hook = start()?;
    for needle in [
        "template SluiceBroken: fixtures/gatekeeper/webhook/actions/broken-template.yaml:rego:",
        "template SluiceCelOnly has only K8sNativeValidation (CEL) code, which sluice does not evaluate; its constraints are skipped",
        "constraint SluiceFixtureAlways/audit-only: enforcementAction \\\"audit\\\" is not deny, dryrun or warn; the constraint is skipped",
        "constraint SluiceNoSuchKind/orphan: no ConstraintTemplate defines kind SluiceNoSuchKind; the constraint is skipped",
        "constraint SluiceBroken/uses-broken-template: the template of kind SluiceBroken failed to load; the constraint is skipped",
        "constraint SluiceCelOnly/uses-cel-template: the template of kind SluiceCelOnly failed to load; the constraint is skipped",
    ] {
        let line = hook.wait_for_log(needle);
        assert!(line.contains("\"level\":\"ERROR\""), "{line}");
    }
    assert_eq!(hook.metric("sluice_admission_template_load_errors"), 2.0);
    assert_eq!(hook.metric("sluice_admission_constraint_load_errors"), 4.0);
    assert_eq!(
        hook.get("/readyz").await?,
        (200, "ready: 1 templates, 3 constraints\n".to_string())
    );
    let (_, answer) = hook
        .post(
            "/v1/admit",
            &review("x", "CREATE", Some(pod("deny-me")), None),
        )
        .await?;
    assert_eq!(
        answer["response"]["status"]["message"],
        json!("[deny-by-name] refused")
    );
    Ok(())
}
