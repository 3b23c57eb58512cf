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
use rustls::ClientConfig;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::CertificateDer;
use rustls_platform_verifier::Verifier;

use crate::http::trust;
use crate::http::untrusted::Explaining;

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
    let provider = trust::provider();
    let setup = |err: rustls::Error| StepError::new(format!("cannot set up TLS: {err}"));
    let verifier: Arc<dyn ServerCertVerifier> = if insecure {
        Arc::new(trust::AcceptAnyCertificate {
            provider: Arc::clone(&provider),
        })
    } else {
        Arc::new(Explaining(
            Verifier::new_with_extra_roots(roots, Arc::clone(&provider)).map_err(setup)?,
        ))
    };
    // the upgrade is an HTTP/1.1 request: a server must not pick h2
    trust::client_config(provider, verifier, &[b"http/1.1"]).map_err(setup)
}
