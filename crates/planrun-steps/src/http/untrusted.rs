//! Why a server's certificate was not trusted, in words a tester can act
//! on: it is self-signed (named by its subject), it was issued by an
//! authority that is not trusted (named), or it is a certificate
//! authority's own, which cannot identify a server even when trusted.
//!
//! [`Explaining`] wraps the verifier of every executor that speaks TLS and,
//! when the verifier rejects a certificate for want of a trusted issuer,
//! replaces the bare `UnknownIssuer` with an [`Untrusted`] that says which
//! of these it is, read from the certificate's issuer and subject (a small
//! DER reader: the names are all it needs). It must not change *whether*
//! a certificate is trusted: every verdict is the inner verifier's.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error, OtherError, SignatureScheme,
};

/// A verifier whose rejections for want of a trusted issuer say why.
#[derive(Debug)]
pub(crate) struct Explaining<V>(pub(crate) V);

impl<V: ServerCertVerifier> ServerCertVerifier for Explaining<V> {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        self.0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map_err(|err| explain(err, end_entity))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        self.0.requires_raw_public_keys()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        self.0.root_hint_subjects()
    }
}

/// Why a certificate has no trusted issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Untrusted {
    /// Issued by itself: its issuer is its subject.
    SelfSigned {
        /// The subject, `CN=…` (`None` when it has no name planrun reads).
        subject: Option<String>,
        /// Marked as a certificate authority (`CA:TRUE`), which no server
        /// certificate may be, trusted or not.
        authority: bool,
    },
    /// Issued by an authority that is not trusted.
    UnknownIssuer {
        /// The issuer, `CN=…`.
        issuer: Option<String>,
    },
    /// A certificate authority's certificate, not a server's.
    Authority {
        /// The subject.
        subject: Option<String>,
    },
}

impl Untrusted {
    /// What to do about it.
    pub(crate) fn help(&self) -> String {
        const INSECURE: &str = "or set `insecure = true` to skip verification (test systems only)";
        match self {
            Self::SelfSigned {
                authority: false, ..
            } => format!(
                "trust this certificate itself with `ca_cert = \"path/to/its.pem\"` (a self-signed certificate is its own authority), {INSECURE}"
            ),
            Self::SelfSigned { authority: true, .. } | Self::Authority { .. } => format!(
                "give the server a certificate issued by an authority (and trust that with `ca_cert = \"path/to/ca.pem\"`), {INSECURE}"
            ),
            Self::UnknownIssuer { issuer: Some(issuer) } => format!(
                "for a test system with its own certificate authority, trust `{issuer}` with `ca_cert = \"path/to/ca.pem\"`, {INSECURE}"
            ),
            Self::UnknownIssuer { issuer: None } => format!(
                "for a test system with its own certificate authority set `ca_cert = \"path/to/ca.pem\"`, {INSECURE}"
            ),
        }
    }
}

impl fmt::Display for Untrusted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let named = |name: &Option<String>| {
            name.as_ref()
                .map_or_else(String::new, |n| format!(" (`{n}`)"))
        };
        match self {
            Self::SelfSigned {
                subject,
                authority: false,
            } => write!(
                f,
                "the server's certificate{} is self-signed: no trusted authority issued it",
                named(subject)
            ),
            Self::SelfSigned {
                subject,
                authority: true,
            } => write!(
                f,
                "the server's certificate{} is self-signed and marked as a certificate authority (`CA:TRUE`), which cannot identify a server even when trusted",
                named(subject)
            ),
            Self::UnknownIssuer { issuer: Some(issuer) } => write!(
                f,
                "the server's certificate was issued by `{issuer}`, which is not a trusted authority"
            ),
            Self::UnknownIssuer { issuer: None } => f.write_str(
                "the server's certificate was issued by an authority that is not trusted",
            ),
            Self::Authority { subject } => write!(
                f,
                "the server's certificate{} is a certificate authority's (`CA:TRUE`), which cannot identify a server",
                named(subject)
            ),
        }
    }
}

impl std::error::Error for Untrusted {}

/// The [`Untrusted`] in a rustls error, if it is one.
pub(crate) fn untrusted(err: &Error) -> Option<&Untrusted> {
    match err {
        Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) => {
            inner.downcast_ref::<Untrusted>()
        }
        _ => None,
    }
}

/// `err`, or an [`Untrusted`] in its place when it rejects `end_entity`
/// for want of a trusted issuer and the certificate says why.
fn explain(err: Error, end_entity: &CertificateDer<'_>) -> Error {
    let Error::InvalidCertificate(reason) = &err else {
        return err;
    };
    let authority = match reason {
        CertificateError::UnknownIssuer => false,
        // webpki's own error, which rustls passes on as it is
        CertificateError::Other(other) if format!("{other:?}").contains("CaUsedAsEndEntity") => {
            true
        }
        _ => return err,
    };
    let Some((issuer, subject)) = names(end_entity) else {
        return err;
    };
    let why = if issuer == subject {
        Untrusted::SelfSigned {
            subject: name_text(subject),
            authority,
        }
    } else if authority {
        Untrusted::Authority {
            subject: name_text(subject),
        }
    } else {
        Untrusted::UnknownIssuer {
            issuer: name_text(issuer),
        }
    };
    Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(why))))
}

/// One DER element of `input`: its tag, its contents and what follows it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |len, b| len << 8 | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The element of `input` with tag `tag`, and what follows it.
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (found, contents, rest) = element(input)?;
    (found == tag).then_some((contents, rest))
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;

/// The issuer and subject names (DER contents) of a certificate.
fn names<'a>(cert: &'a CertificateDer<'_>) -> Option<(&'a [u8], &'a [u8])> {
    let (cert, _) = expect(cert.as_ref(), SEQUENCE)?;
    let (mut tbs, _) = expect(cert, SEQUENCE)?;
    if tbs.first() == Some(&0xA0) {
        // the version, explicitly tagged
        tbs = element(tbs)?.2;
    }
    let (_serial, rest) = expect(tbs, 0x02)?;
    let (_algorithm, rest) = expect(rest, SEQUENCE)?;
    let (issuer, rest) = expect(rest, SEQUENCE)?;
    let (_validity, rest) = expect(rest, SEQUENCE)?;
    let (subject, _) = expect(rest, SEQUENCE)?;
    Some((issuer, subject))
}

/// A name as `CN=…, O=…` (most specific first), of the attributes people
/// know; `None` when it has none of them.
fn name_text(name: &[u8]) -> Option<String> {
    let mut parts = Vec::new();
    let mut rest = name;
    while !rest.is_empty() {
        let (mut set, after) = expect(rest, SET)?;
        rest = after;
        while !set.is_empty() {
            let (attribute, after) = expect(set, SEQUENCE)?;
            set = after;
            let (oid, value) = expect(attribute, 0x06)?;
            let (tag, value, _) = element(value)?;
            let key = match oid {
                [0x55, 0x04, 0x03] => "CN",
                [0x55, 0x04, 0x0A] => "O",
                [0x55, 0x04, 0x0B] => "OU",
                [0x55, 0x04, 0x07] => "L",
                [0x55, 0x04, 0x08] => "ST",
                [0x55, 0x04, 0x06] => "C",
                _ => continue,
            };
            let text = match tag {
                // UTF8String, PrintableString, IA5String, TeletexString
                0x0C | 0x13 | 0x16 | 0x14 => String::from_utf8_lossy(value).into_owned(),
                // BMPString
                0x1E => {
                    let units: Vec<u16> = value
                        .chunks_exact(2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]))
                        .collect();
                    String::from_utf16_lossy(&units)
                }
                _ => continue,
            };
            // a name comes from the server: nothing in it may steer a terminal
            let text: String = text.chars().filter(|c| !c.is_control()).collect();
            parts.push(format!("{key}={text}"));
        }
    }
    parts.reverse();
    (!parts.is_empty()).then(|| parts.join(", "))
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::pem::PemObject;

    use super::*;

    fn fixture(name: &str) -> CertificateDer<'static> {
        let path = format!(
            "{}/tests/fixtures/tls/{name}.pem",
            env!("CARGO_MANIFEST_DIR")
        );
        CertificateDer::from_pem_file(path).expect("a test certificate")
    }

    #[test]
    fn names_are_read_from_certificates() {
        let server = fixture("server");
        let (issuer, subject) = names(&server).unwrap();
        assert_eq!(name_text(issuer).as_deref(), Some("CN=planrun test CA"));
        assert_eq!(name_text(subject).as_deref(), Some("CN=localhost"));
        let own = fixture("self-signed");
        let (issuer, subject) = names(&own).unwrap();
        assert_eq!(issuer, subject);
        assert_eq!(name_text(subject).as_deref(), Some("CN=planrun self-signed"));
        // nothing to read is no name, not a panic
        assert!(names(&CertificateDer::from(vec![0x30, 0x03, 0x30, 0x01])).is_none());
        assert!(names(&CertificateDer::from(vec![0x30, 0x84, 0xff])).is_none());
        assert!(name_text(&[0x31, 0x02, 0x30]).is_none());
    }

    fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag, u8::try_from(contents.len()).unwrap()];
        out.extend_from_slice(contents);
        out
    }

    fn attribute(oid: u8, tag: u8, value: &[u8]) -> Vec<u8> {
        let pair = [tlv(0x06, &[0x55, 0x04, oid]), tlv(tag, value)].concat();
        tlv(SET, &tlv(SEQUENCE, &pair))
    }

    #[test]
    fn a_name_lists_the_specific_first_and_drops_control_characters() {
        let name = [
            attribute(0x06, 0x13, b"DE"),
            attribute(0x0A, 0x0C, b"Acme"),
            // an attribute planrun does not show
            attribute(0x05, 0x13, b"42"),
            attribute(0x03, 0x1E, &[0, b'a', 0, 0x1b, 0, b'b']),
        ]
        .concat();
        assert_eq!(name_text(&name).as_deref(), Some("CN=ab, O=Acme, C=DE"));
    }

    #[test]
    fn unknown_issuers_are_told_apart() {
        let unknown = || Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let said = |err: Error| untrusted(&err).cloned();
        assert_eq!(
            said(explain(unknown(), &fixture("self-signed"))),
            Some(Untrusted::SelfSigned {
                subject: Some(String::from("CN=planrun self-signed")),
                authority: false
            })
        );
        assert_eq!(
            said(explain(unknown(), &fixture("server"))),
            Some(Untrusted::UnknownIssuer {
                issuer: Some(String::from("CN=planrun test CA"))
            })
        );
        // other rejections are the verifier's own
        let expired = Error::InvalidCertificate(CertificateError::Expired);
        assert!(said(explain(expired, &fixture("self-signed"))).is_none());
    }
}
