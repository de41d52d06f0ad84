//! Every crash the fuzz targets found, as a test with the crashing input: it runs through the
//! same function as its fuzz target (`sluice::fuzzing`) and the fixed parser's answer is
//! checked. The fuzzers' inputs are in `fuzz/artifacts/<target>/` when they are found; the
//! minimised corpora in `fuzz/corpus/` (replayed by tests/fuzz_corpus.rs) keep them covered too.

use sluice::proxy::sni::{self, ClientHello};

fn hex(lines: &[&str]) -> Vec<u8> {
    let text: String = lines.concat();
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// A ClientHello (one record) whose server_name extension holds `name`.
fn hello_naming(name: &[u8]) -> Vec<u8> {
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[7; 32]);
    body.push(0);
    body.extend_from_slice(&[0, 2, 0x13, 0x01, 1, 0]);
    let entry = [&[0u8][..], &(name.len() as u16).to_be_bytes(), name].concat();
    let list = [&(entry.len() as u16).to_be_bytes()[..], &entry].concat();
    let ext = [&[0u8, 0][..], &(list.len() as u16).to_be_bytes(), &list].concat();
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![1, 0];
    hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
    hs.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    record.extend_from_slice(&hs);
    record
}

/// tls_client_hello, found after 194k executions: an SNI with an empty label
/// ("brokeptr..nallocal") was taken as a host name. It is now refused (the tunnel or the
/// intercepted connection fails closed).
#[test]
fn an_sni_with_an_empty_label_is_malformed() {
    let crash = hex(&[
        "1603010200010001fc03032e0f51192fb23be4ac3dd58e66f261c395e7aafdd50467f43749b37c6ad562ae20c187fac5",
        "ceecb3dc7530ee1c1e591a3f29f3b466f14086b19b7d610187ff4ebd0024130213031301c02cc030c02bc02fcca9cca8",
        "c024c028c023c027009f009e006b006700ff0100018f00000017001500001262726f6b657074722e2e6e616c6c6f6361",
        "6c000b000403000102000a00160014001d0017001e001900180100010101020103010400230000001600000017000000",
        "0d002a0028040305030603080708080809080a080b080408050806040105010601030303010302040205020602002b00",
        "050403040303002d00020101003300260024001d0020d29ed0adcc4ab1b47377c9b729a3008df81cb694ccfa76721e4d",
        "555e588bb414001500db0000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "00000000000000000000000000000000000000000000000000000000000000000000000000",
    ]);
    sluice::fuzzing::client_hello(&crash);
    assert_eq!(
        sni::parse(&crash),
        ClientHello::Malformed("server_name has an empty or overlong label")
    );
    let long = "a".repeat(64);
    for bad in [
        &b".plant.local"[..],
        b"plant.local.",
        b"a..b",
        long.as_bytes(),
    ] {
        let hello = hello_naming(bad);
        sluice::fuzzing::client_hello(&hello);
        assert!(
            matches!(sni::parse(&hello), ClientHello::Malformed(_)),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let good = hello_naming(b"Broker.Plant.local");
    assert_eq!(
        sni::parse(&good),
        ClientHello::Hello {
            sni: Some("broker.plant.local".into())
        }
    );
}

/// connect_authority, found after a few thousand executions: the `http` crate accepts
/// authorities such as `bla[]:+08` (brackets in a name, a `+` before the port). The target's
/// first invariant (a judged host never carries a bracket) was stricter than the product
/// needs: such a host is not an address and not a local name, so it is judged as an external
/// name, with the port it is connected to — fail closed. The inputs stay as a check of that.
#[test]
fn odd_authorities_are_judged_as_external_names_on_the_port_they_name() {
    use sluice::config::SiteConfig;
    use sluice::site::{HostKind, Site};
    let site = Site::new(&SiteConfig::default());
    for (text, port) in [("bla[]:+08", 8), ("~[]:8443", 8443), ("[fet@@@]:443", 443)] {
        sluice::fuzzing::connect_authority(text.as_bytes());
        let Ok(authority) = text.parse::<http::uri::Authority>() else {
            continue;
        };
        assert_eq!(authority.port_u16(), Some(port), "{text}");
        let host = authority.host();
        assert_eq!(
            site.classify(host),
            HostKind::ExternalName,
            "{text}: {host:?}"
        );
    }
}
