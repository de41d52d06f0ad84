//! The two sockets of a session, plain or TLS, split into read and write halves, and the
//! client-certificate identity.
//!
//! A plain TCP read half can wait for readability without holding a buffer, which is what keeps
//! an idle connection at a few hundred bytes of memory; a TLS half (rustls keeps its own
//! buffers) is simply always "ready". Not here: MQTT.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Any byte stream a session can run over.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// A connection before it is split: plain TCP, or anything else (TLS).
pub enum Stream {
    Tcp(TcpStream),
    Other(Box<dyn Io>),
}

impl Stream {
    pub fn split(self) -> (Reader, Writer) {
        match self {
            Stream::Tcp(s) => {
                let (r, w) = s.into_split();
                (Reader::Tcp(r), Writer::Tcp(w))
            }
            Stream::Other(s) => {
                let (r, w) = tokio::io::split(s);
                (Reader::Other(r), Writer::Other(w))
            }
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Other(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, b),
            Stream::Other(s) => Pin::new(s).poll_write(cx, b),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Other(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Other(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

pub enum Reader {
    Tcp(OwnedReadHalf),
    Other(tokio::io::ReadHalf<Box<dyn Io>>),
}

impl Reader {
    /// Waits until a read would make progress (plain TCP), without a buffer. Polled through
    /// the socket's own reader slot rather than `readable()`, whose waiter node would sit in
    /// the future of every idle direction (about 100 bytes each).
    pub fn readable(&mut self) -> impl Future<Output = io::Result<()>> + '_ {
        std::future::poll_fn(move |cx| match self {
            Reader::Tcp(r) => r.as_ref().poll_read_ready(cx),
            Reader::Other(_) => Poll::Ready(Ok(())),
        })
    }
}

impl AsyncRead for Reader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Reader::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Reader::Other(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

pub enum Writer {
    Tcp(OwnedWriteHalf),
    Other(tokio::io::WriteHalf<Box<dyn Io>>),
}

impl AsyncWrite for Writer {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Writer::Tcp(s) => Pin::new(s).poll_write(cx, b),
            Writer::Other(s) => Pin::new(s).poll_write(cx, b),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Writer::Tcp(s) => Pin::new(s).poll_flush(cx),
            Writer::Other(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Writer::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Writer::Other(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// The subject common name (OID 2.5.4.3) of a DER certificate, if it has one.
///
/// A minimal DER walk over `Certificate → tbsCertificate → subject`; anything unexpected
/// yields `None` (the certificate was already verified by rustls, so this only reads it).
pub fn subject_common_name(der: &[u8]) -> Option<String> {
    let (cert, _) = der_element(der, 0x30)?;
    let (tbs, _) = der_element(cert, 0x30)?;
    let mut rest = tbs;
    // Optional explicit version [0].
    if rest.first() == Some(&0xA0) {
        rest = der_skip(rest)?;
    }
    // serialNumber, signature, issuer, validity.
    for _ in 0..4 {
        rest = der_skip(rest)?;
    }
    let (mut subject, _) = der_element(rest, 0x30)?;
    let mut cn = None;
    while !subject.is_empty() {
        let (set, after) = der_element(subject, 0x31)?;
        subject = after;
        let mut attrs = set;
        while !attrs.is_empty() {
            let (attr, after) = der_element(attrs, 0x30)?;
            attrs = after;
            let (oid, value) = der_element(attr, 0x06)?;
            if oid == [0x55, 0x04, 0x03] {
                let (s, _) = der_any(value)?;
                cn = Some(String::from_utf8_lossy(s).into_owned());
            }
        }
    }
    cn
}

/// Reads one element of `tag`: (its content, what follows it).
fn der_element(b: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    if *b.first()? != tag {
        return None;
    }
    der_any(b)
}

fn der_any(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let first_len = *b.get(1)?;
    let (len, start) = if first_len < 0x80 {
        (usize::from(first_len), 2)
    } else {
        let n = usize::from(first_len & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*b.get(2 + i)?);
        }
        (len, 2 + n)
    };
    let end = start.checked_add(len)?;
    Some((b.get(start..end)?, b.get(end..)?))
}

fn der_skip(b: &[u8]) -> Option<&[u8]> {
    der_any(b).map(|(_, rest)| rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_name_is_read_from_a_generated_certificate() {
        let Ok(key) = rcgen::KeyPair::generate() else {
            panic!("key generation failed");
        };
        let Ok(mut params) = rcgen::CertificateParams::new(vec!["press-7.plant.local".into()])
        else {
            panic!("params");
        };
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "plant-042");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "press-7");
        let Ok(cert) = params.self_signed(&key) else {
            panic!("self-signing failed");
        };
        assert_eq!(subject_common_name(cert.der()), Some("press-7".into()));
        assert_eq!(subject_common_name(b"\x30\x03garbage"), None);
    }
}
