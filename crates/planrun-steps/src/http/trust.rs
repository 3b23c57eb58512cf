//! Certificate checks shared by every executor that speaks TLS (`http`,
//! `sse`, `wss://` handshakes): the platform verifier, read from the system's
//! trust store only when a TLS handshake first needs it, and the "accept any
//! certificate" of `insecure`; plus the client configuration around them.
//!
//! Reading every certificate of the system store takes a few milliseconds; a
//! spec that speaks plain HTTP (most specs against a local system) should not
//! pay them at start-up. The checks themselves are the platform verifier's,
//! unchanged. This module must not decide *whether* to trust: it only defers.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, Error, SignatureScheme};
use rustls_platform_verifier::Verifier;

use super::untrusted::Explaining;

/// The handshake signature checks of a verifier with a `provider` field: the
/// provider's algorithms, as the platform verifier uses; no trust store is
/// involved.
macro_rules! provider_signature_checks {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            verify_tls12_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            verify_tls13_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.provider
                .signature_verification_algorithms
                .supported_schemes()
        }
    };
}

/// The process's crypto provider (ring, installed on first use).
pub(crate) fn provider() -> Arc<CryptoProvider> {
    crate::install_crypto_provider();
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

/// A client configuration checking certificates with `verifier` and offering
/// `alpn` (in order of preference).
pub(crate) fn client_config(
    provider: Arc<CryptoProvider>,
    verifier: Arc<dyn ServerCertVerifier>,
    alpn: &[&[u8]],
) -> Result<ClientConfig, Error> {
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// The platform verifier, created on the first certificate to check.
#[derive(Debug)]
pub(crate) struct LazyVerifier {
    provider: Arc<CryptoProvider>,
    inner: OnceLock<Result<Verifier, Error>>,
}

impl LazyVerifier {
    pub(crate) fn new(provider: Arc<CryptoProvider>) -> Self {
        Self {
            provider,
            inner: OnceLock::new(),
        }
    }

    fn verifier(&self) -> Result<&Verifier, Error> {
        self.inner
            .get_or_init(|| Verifier::new(Arc::clone(&self.provider)))
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl ServerCertVerifier for LazyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        self.verifier()?.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    provider_signature_checks!();
}

/// A TLS configuration for the default client: system trust, read lazily;
/// HTTP/2 and HTTP/1.1 offered.
pub(crate) fn lazy_tls_config() -> Result<ClientConfig, Error> {
    let provider = provider();
    client_config(
        Arc::clone(&provider),
        Arc::new(Explaining(LazyVerifier::new(provider))),
        &[b"h2", b"http/1.1"],
    )
}

/// A TLS configuration for a client that trusts `roots` besides the
/// system's (`ca_cert`); HTTP/2 and HTTP/1.1 offered.
pub(crate) fn tls_config_with_roots(roots: Vec<CertificateDer<'static>>) -> Result<ClientConfig, Error> {
    let provider = provider();
    let verifier = Verifier::new_with_extra_roots(roots, Arc::clone(&provider))?;
    client_config(provider, Arc::new(Explaining(verifier)), &[b"h2", b"http/1.1"])
}

#[cfg_attr(
    not(feature = "ws"),
    allow(dead_code, reason = "only `ws` builds its own config")
)]
/// `insecure = true`: every certificate is accepted. Signatures are still
/// checked, so the session is at least the one the certificate's key made.
#[derive(Debug)]
pub(crate) struct AcceptAnyCertificate {
    pub(crate) provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    provider_signature_checks!();
}
