//! Certificate rotation without restart: new files are picked up by the next handshakes; a
//! broken pair is refused and the previous certificate keeps serving.

mod support;

use std::time::{Duration, Instant};

use support::{Scrape, Webhook, request, write_pki};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_certificate_is_served_without_restart() -> Result<(), String> {
    let mut hook = Webhook::start("    cert_reload_interval: 100ms\n")?;
    assert_eq!(
        request(hook.addr, &hook.ca, "GET", "/healthz", Vec::new())
            .await?
            .0,
        200
    );

    // Half-written or garbage files: refused, counted, the old certificate keeps serving.
    std::fs::write(hook.dir().join("tls.crt"), "not a certificate").map_err(|e| e.to_string())?;
    hook.wait_metric("sluice_admission_errors_total{kind=\"cert_reload\"}", 1.0);
    assert_eq!(
        request(hook.addr, &hook.ca, "GET", "/healthz", Vec::new())
            .await?
            .0,
        200
    );

    // A new pair from a different CA: clients trusting only the new CA get through once the
    // files are re-read; clients of the old CA no longer do.
    let new_ca = hook.dir().join("ca2.crt");
    write_pki(
        &new_ca,
        &hook.dir().join("tls.crt"),
        &hook.dir().join("tls.key"),
    )?;
    let deadline = Instant::now() + support::WAIT;
    loop {
        match request(hook.addr, &new_ca, "GET", "/healthz", Vec::new()).await {
            Ok((200, _)) => break,
            other if Instant::now() > deadline => {
                return Err(format!(
                    "rotated certificate never served: {other:?} {:?}",
                    hook.logs()
                ));
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let old = request(hook.addr, &hook.ca, "GET", "/healthz", Vec::new()).await;
    assert!(
        matches!(&old, Err(e) if e.starts_with("TLS: invalid peer certificate")),
        "{old:?}"
    );
    hook.ca = new_ca;
    assert_eq!(
        hook.metric("sluice_admission_certificate_reloads_total"),
        1.0
    );
    Ok(())
}
