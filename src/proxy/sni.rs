//! Reads the server name (SNI) out of the first bytes of a TLS connection: pure parsing of a
//! TLS ClientHello from a byte slice, no I/O, so it is easy to test and fuzz.
//!
//! The CONNECT tunnel uses it to catch domain fronting: a tunnel opened to a local address
//! whose TLS handshake names an external host. Not here: deciding what to do about it
//! (`proxy/http/tunnel.rs`) or any other part of TLS.

/// What the first bytes of a tunnel turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientHello {
    /// The bytes do not start a TLS handshake record: some other protocol.
    NotTls,
    /// A TLS handshake record, but more bytes are needed to see the whole ClientHello.
    Incomplete,
    /// A complete ClientHello; `sni` is its host_name (lowercase), when it has one.
    Hello { sni: Option<String> },
    /// It claims to be TLS but does not parse; callers fail closed.
    Malformed(&'static str),
}

/// Largest ClientHello accepted (bytes of handshake message); real ones are under 2 KiB, with
/// post-quantum key shares under 4 KiB.
pub const MAX_HELLO: usize = 64 * 1024;

const RECORD_HANDSHAKE: u8 = 0x16;
const HANDSHAKE_CLIENT_HELLO: u8 = 0x01;
const EXT_SERVER_NAME: u16 = 0x0000;

/// Parses the ClientHello at the start of `buf` (which may span several TLS records).
pub fn parse(buf: &[u8]) -> ClientHello {
    let Some(&first) = buf.first() else {
        return ClientHello::Incomplete;
    };
    if first != RECORD_HANDSHAKE {
        return ClientHello::NotTls;
    }
    if buf.len() >= 2 && buf[1] != 0x03 {
        return ClientHello::NotTls;
    }
    // Reassemble the handshake message from the records that carry it.
    let mut handshake = Vec::new();
    let mut rest = buf;
    loop {
        if rest.len() < 5 {
            return ClientHello::Incomplete;
        }
        if rest[0] != RECORD_HANDSHAKE {
            return ClientHello::Malformed("ClientHello interrupted by another record type");
        }
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        if len == 0 || len > 16_384 + 2048 {
            return ClientHello::Malformed("bad TLS record length");
        }
        if rest.len() < 5 + len {
            return ClientHello::Incomplete;
        }
        handshake.extend_from_slice(&rest[5..5 + len]);
        rest = &rest[5 + len..];
        if handshake.len() >= 4 {
            if handshake[0] != HANDSHAKE_CLIENT_HELLO {
                return ClientHello::Malformed("first handshake message is not a ClientHello");
            }
            let need = 4
                + usize::from(handshake[1]) * 65_536
                + usize::from(u16::from_be_bytes([handshake[2], handshake[3]]));
            if need > MAX_HELLO {
                return ClientHello::Malformed("ClientHello too large");
            }
            if handshake.len() >= need {
                return match hello_sni(&handshake[4..need]) {
                    Ok(sni) => ClientHello::Hello { sni },
                    Err(e) => ClientHello::Malformed(e),
                };
            }
        }
    }
}

/// A cursor over the ClientHello body that fails instead of panicking.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.0.len() < n {
            return Err("truncated ClientHello");
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, &'static str> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn vec8(&mut self) -> Result<&'a [u8], &'static str> {
        let n = usize::from(self.u8()?);
        self.take(n)
    }
    fn vec16(&mut self) -> Result<&'a [u8], &'static str> {
        let n = usize::from(self.u16()?);
        self.take(n)
    }
}

fn hello_sni(body: &[u8]) -> Result<Option<String>, &'static str> {
    let mut r = Reader(body);
    r.take(2)?; // legacy_version
    r.take(32)?; // random
    r.vec8()?; // legacy_session_id
    r.vec16()?; // cipher_suites
    r.vec8()?; // legacy_compression_methods
    if r.0.is_empty() {
        return Ok(None); // no extensions at all
    }
    let mut exts = Reader(r.vec16()?);
    let mut sni = None;
    while !exts.0.is_empty() {
        let kind = exts.u16()?;
        let data = exts.vec16()?;
        if kind != EXT_SERVER_NAME {
            continue;
        }
        if sni.is_some() {
            return Err("duplicate server_name extension");
        }
        let mut list = Reader(Reader(data).vec16()?);
        while !list.0.is_empty() {
            let name_type = list.u8()?;
            let name = list.vec16()?;
            if name_type != 0 {
                continue;
            }
            if sni.is_some() {
                return Err("more than one host_name in server_name");
            }
            sni = Some(host_name(name)?);
        }
    }
    Ok(sni)
}

/// RFC 6066: a DNS hostname in ASCII, no trailing dot; anything else is refused.
fn host_name(raw: &[u8]) -> Result<String, &'static str> {
    if raw.is_empty() || raw.len() > 253 {
        return Err("server_name has a bad length");
    }
    if !raw
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    {
        return Err("server_name is not a DNS host name");
    }
    // Every label 1 to 63 bytes: no empty label (`a..b`, `.a`, a trailing dot), which would
    // not name the host the judge is asked about.
    if raw
        .split(|b| *b == b'.')
        .any(|l| l.is_empty() || l.len() > 63)
    {
        return Err("server_name has an empty or overlong label");
    }
    // The check above admits only ASCII, so this conversion cannot fail.
    Ok(String::from_utf8_lossy(raw).to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello as rustls would send it, for `name` (None: no SNI extension).
    fn hello(name: Option<&str>, extra_ext_len: usize) -> Vec<u8> {
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[7; 32]);
        body.push(32);
        body.extend_from_slice(&[9; 32]);
        body.extend_from_slice(&[0, 4, 0x13, 0x01, 0x13, 0x02]);
        body.extend_from_slice(&[1, 0]);
        let mut exts = Vec::new();
        // An unrelated extension first (supported_versions-like), then padding-ish bulk.
        exts.extend_from_slice(&[0x00, 0x2b, 0x00, 0x03, 0x02, 0x03, 0x04]);
        if let Some(n) = name {
            let n = n.as_bytes();
            let entry_len = 3 + n.len();
            exts.extend_from_slice(&[0x00, 0x00]);
            exts.extend_from_slice(&((entry_len + 2) as u16).to_be_bytes());
            exts.extend_from_slice(&(entry_len as u16).to_be_bytes());
            exts.push(0);
            exts.extend_from_slice(&(n.len() as u16).to_be_bytes());
            exts.extend_from_slice(n);
        }
        if extra_ext_len > 0 {
            exts.extend_from_slice(&[0x00, 0x15]);
            exts.extend_from_slice(&(extra_ext_len as u16).to_be_bytes());
            exts.extend(std::iter::repeat_n(0u8, extra_ext_len));
        }
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(&exts);
        let mut hs = vec![HANDSHAKE_CLIENT_HELLO, 0];
        hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
        hs.extend_from_slice(&body);
        records(&hs, 16_384)
    }

    fn records(hs: &[u8], max: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in hs.chunks(max) {
            out.extend_from_slice(&[RECORD_HANDSHAKE, 0x03, 0x01]);
            out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
            out.extend_from_slice(chunk);
        }
        out
    }

    #[test]
    fn reads_the_host_name_lowercased() {
        let h = hello(Some("Exfil.Example.COM"), 0);
        assert_eq!(
            parse(&h),
            ClientHello::Hello {
                sni: Some("exfil.example.com".into())
            }
        );
    }

    #[test]
    fn a_hello_without_sni_has_none() {
        assert_eq!(parse(&hello(None, 0)), ClientHello::Hello { sni: None });
    }

    #[test]
    fn every_proper_prefix_is_incomplete() {
        let h = hello(Some("historian.plant.local"), 300);
        for n in 0..h.len() {
            assert_eq!(parse(&h[..n]), ClientHello::Incomplete, "prefix {n}");
        }
    }

    #[test]
    fn a_hello_split_over_records_is_reassembled() {
        let h = hello(Some("a.example.com"), 5000);
        let hs: Vec<u8> = h[5..].to_vec();
        let split = records(&hs, 1000);
        assert_eq!(
            parse(&split),
            ClientHello::Hello {
                sni: Some("a.example.com".into())
            }
        );
    }

    #[test]
    fn other_protocols_are_not_tls() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), ClientHello::NotTls);
        assert_eq!(parse(b"SSH-2.0-OpenSSH"), ClientHello::NotTls);
        assert_eq!(parse(&[0x16, 0x01]), ClientHello::NotTls);
    }

    #[test]
    fn lies_are_malformed_not_panics() {
        // A record that is not a ClientHello.
        let mut h = hello(Some("x.local"), 0);
        h[5] = 0x02;
        assert!(matches!(parse(&h), ClientHello::Malformed(_)));
        // An extensions length pointing past the end.
        let mut h = hello(Some("x.local"), 0);
        let len = h.len();
        h.truncate(len - 2);
        let hs_len = h.len() - 5;
        h[3..5].copy_from_slice(&(hs_len as u16).to_be_bytes());
        h[7..9].copy_from_slice(&((hs_len - 4) as u16).to_be_bytes());
        assert!(matches!(parse(&h), ClientHello::Malformed(_)));
        // A name with bytes no host name has.
        let h = hello(Some("evil\u{7f}.com"), 0);
        assert!(matches!(parse(&h), ClientHello::Malformed(_)));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let mut buf = hello(Some("fuzz.example.com"), 40);
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let i = (seed as usize) % buf.len();
            buf[i] = (seed >> 32) as u8;
            let _ = parse(&buf);
            let _ = parse(&buf[..i]);
        }
    }
}
