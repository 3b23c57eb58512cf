//! The rustls configuration of `wss://` connections.
//!
//! Trust is that of `http` and `sse`: the platform verifier (the system's
//! trust store) plus the roots of `ca_cert` (read by the same function), or
//! any certificate with `insecure`. Unlike reqwest's `insecure`, handshake
//! signatures are still checked. One configuration per setting is built on
//! the first `wss://` step that needs it (reading the system's store then)
//! and kept for the spec run. This module must not open connections.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use planrun_runner::executor::{SpecContext, StepError};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_platform_verifier::Verifier;

/// The TLS settings of a `ws` step.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct TlsSettings {
    /// Accept any certificate.
    pub(super) insecure: bool,
    /// A PEM file of extra roots, resolved against the spec's directory.
    pub(super) ca_cert: Option<PathBuf>,
}

/// The configurations built so far in a spec run, by setting.
#[derive(Default)]
struct WsTlsConfigs {
    by_settings: Mutex<HashMap<TlsSettings, Arc<ClientConfig>>>,
}

/// The rustls configuration for `settings`, built on first use in a spec run.
pub(super) async fn client_config(
    ctx: &SpecContext,
    settings: &TlsSettings,
) -> Result<Arc<ClientConfig>, StepError> {
    let configs = ctx.resource(|| Ok(WsTlsConfigs::default()))?;
    let cached = configs
        .by_settings
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(settings)
        .cloned();
    if let Some(config) = cached {
        return Ok(config);
    }
    let roots = match &settings.ca_cert {
        Some(path) => crate::http::read_roots(path).await?,
        None => Vec::new(),
    };
    let built = Arc::new(build(settings.insecure, roots)?);
    Ok(Arc::clone(
        configs
            .by_settings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(settings.clone())
            .or_insert(built),
    ))
}

fn build(insecure: bool, roots: Vec<CertificateDer<'static>>) -> Result<ClientConfig, StepError> {
    crate::install_crypto_provider();
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let setup = |err: rustls::Error| StepError::new(format!("cannot set up TLS: {err}"));
    let verifier: Arc<dyn ServerCertVerifier> = if insecure {
        Arc::new(AcceptAnyCertificate {
            provider: Arc::clone(&provider),
        })
    } else {
        Arc::new(Verifier::new_with_extra_roots(roots, Arc::clone(&provider)).map_err(setup)?)
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(setup)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    // the upgrade is an HTTP/1.1 request: a server must not pick h2
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// `insecure = true`: every certificate is accepted, as `http` does with the
/// same key. Signatures are still checked, so the session is at least the
/// one the certificate's key made.
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
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
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
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
}
