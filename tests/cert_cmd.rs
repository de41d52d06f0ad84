//! `sluice cert` makes a CA and a serving certificate that a TLS client trusting only the
//! printed caBundle accepts for the Service's DNS name.

mod support;

use std::sync::Arc;

use support::{TempDir, sluice};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn serving_certificate_verifies_against_the_printed_ca_bundle() -> Result<(), String> {
    // `--out` names a directory that does not exist yet: `sluice cert` makes it.
    let scratch = TempDir::new("cert");
    let dir = scratch.join("certs");
    let out = sluice(&[
        "cert",
        "--service",
        "sluice-webhook",
        "--namespace",
        "sluice-system",
        "--out",
        &dir.display().to_string(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let bundle = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("caBundle: "))
        .ok_or("no caBundle line")?;
    use base64::Engine as _;
    let ca_pem = base64::engine::general_purpose::STANDARD
        .decode(bundle.as_bytes())
        .map_err(|e| e.to_string())?;
    assert_eq!(
        ca_pem,
        std::fs::read(dir.join("ca.crt")).map_err(|e| e.to_string())?
    );

    let server =
        sluice::proxy::tls::server_config(&dir.join("tls.crt"), &dir.join("tls.key"), None, &[])
            .map_err(|e| e.to_string())?;
    let client =
        sluice::proxy::tls::client_config(&dir.join("ca.crt")).map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let srv = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let mut tls = acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
        tls.write_all(b"ok").await.map_err(|e| e.to_string())?;
        tls.shutdown().await.map_err(|e| e.to_string())
    });
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = rustls::pki_types::ServerName::try_from("sluice-webhook.sluice-system.svc")
        .map_err(|e| e.to_string())?;
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let mut got = Vec::new();
    tls.read_to_end(&mut got).await.map_err(|e| e.to_string())?;
    assert_eq!(got, b"ok");
    srv.await.map_err(|e| e.to_string())??;
    Ok(())
}

#[test]
fn cert_without_names_is_a_one_line_usage_error() {
    let scratch = TempDir::new("cert-none");
    let out = sluice(&[
        "cert",
        "--out",
        &scratch.join("certs").display().to_string(),
    ]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "sluice cert: name the certificate: --service NAME --namespace NS, or --dns NAME\n"
    );
}

/// `sluice health` (the image's HEALTHCHECK) follows the status of a real HTTP endpoint.
#[test]
fn health_probe_exits_zero_only_on_2xx() -> Result<(), String> {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let server = std::thread::spawn(move || {
        for status in ["200 OK", "503 Service Unavailable"] {
            if let Ok((mut s, _)) = listener.accept() {
                // Read the whole request head before answering.
                let mut seen = Vec::new();
                let mut buf = [0u8; 1024];
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = write!(s, "HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
            }
        }
    });
    let probe = |url: String| sluice(&["health", "--url", &url]);
    let ok = probe(format!("http://{addr}/readyz"));
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let unready = probe(format!("http://{addr}/readyz"));
    assert_eq!(unready.code, 1);
    assert_eq!(
        unready.stderr,
        format!("sluice health: http://{addr}/readyz answered 503\n")
    );
    let _ = server.join();
    let closed = probe("http://127.0.0.1:1/readyz".into());
    assert_eq!(closed.code, 1);
    Ok(())
}
