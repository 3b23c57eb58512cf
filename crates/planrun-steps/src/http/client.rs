//! The HTTP clients of one spec run and the cookie jar they share.
//!
//! One `reqwest::Client` per distinct TLS setting (`insecure`, `ca_cert`),
//! created on first use and kept for the spec run, so steps reuse connections
//! and a session cookie set by a login step is sent by every later step, over
//! any of the clients. Redirect handling is per request (see [`Redirects`]),
//! so it needs no client of its own. The roots of a `ca_cert` are read here,
//! for `ws` too. This module must not build requests or read responses.

use std::cell::Cell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use planrun_runner::executor::{SpecContext, StepError};
use reqwest::cookie::Jar;
use reqwest::redirect::{Attempt, Policy};
use reqwest::Client;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// The TLS settings that need a client of their own.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub(crate) struct TlsSettings {
    /// Accept any certificate.
    pub(crate) insecure: bool,
    /// A PEM file of extra roots (already resolved against the spec's directory).
    pub(crate) ca_cert: Option<PathBuf>,
}

/// The per-spec-run HTTP state kept in the [`SpecContext`].
#[derive(Default)]
pub(crate) struct HttpClients {
    jar: Arc<Jar>,
    clients: Mutex<HashMap<TlsSettings, Client>>,
}

impl HttpClients {
    /// The spec run's clients.
    pub(crate) fn of(ctx: &SpecContext) -> Result<Arc<Self>, StepError> {
        ctx.resource(|| Ok(Self::default()))
    }

    /// The cookie jar shared by every client of the spec run.
    pub(crate) fn jar(&self) -> &Jar {
        &self.jar
    }

    /// The client for `settings`, built on first use.
    pub(crate) async fn client(&self, settings: &TlsSettings) -> Result<Client, StepError> {
        if let Some(client) = self.lock().get(settings) {
            return Ok(client.clone());
        }
        let roots = match &settings.ca_cert {
            Some(path) => read_roots(path).await?,
            None => Vec::new(),
        };
        crate::install_crypto_provider();
        let mut builder = Client::builder()
            .cookie_provider(Arc::clone(&self.jar))
            .redirect(Policy::custom(follow))
            .user_agent(concat!("planrun/", env!("CARGO_PKG_VERSION")));
        if settings.insecure {
            builder = builder.danger_accept_invalid_certs(true);
        } else {
            // the system's trust, read on the first handshake only unless
            // `ca_cert` adds roots; a certificate without a trusted issuer
            // is explained (`untrusted`)
            let tls = match &settings.ca_cert {
                None => super::trust::lazy_tls_config()
                    .map_err(|err| StepError::new(format!("cannot set up TLS: {err}")))?,
                Some(path) => super::trust::tls_config_with_roots(roots).map_err(|err| {
                    StepError::new(format!(
                        "cannot use the certificates of `{}`: {err}",
                        path.display()
                    ))
                })?,
            };
            builder = builder.tls_backend_preconfigured(tls);
        }
        let client = builder.build().map_err(|err| {
            StepError::new(format!(
                "cannot set up the HTTP client: {}",
                super::error::chain(&err)
            ))
        })?;
        // two steps racing to build the same client both succeed; one is kept
        Ok(self
            .lock()
            .entry(settings.clone())
            .or_insert(client)
            .clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TlsSettings, Client>> {
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The certificates of the PEM file `path` (a `ca_cert`, already resolved
/// against the spec's directory), for every executor that speaks TLS.
pub(crate) async fn read_roots(path: &Path) -> Result<Vec<CertificateDer<'static>>, StepError> {
    let pem = tokio::fs::read(path).await.map_err(|err| {
        StepError::new(format!(
            "cannot read the CA certificate `{}`: {err}",
            path.display()
        ))
        .help("a relative `ca_cert` starts at the spec file's directory")
    })?;
    let roots = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| {
            StepError::new(format!(
                "`{}` holds no usable PEM certificate: {err}",
                path.display()
            ))
        })?;
    if roots.is_empty() {
        return Err(StepError::new(format!(
            "`{}` holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)",
            path.display()
        )));
    }
    Ok(roots)
}

/// How one request treats redirects, and how many it followed.
///
/// The redirect policy belongs to the client, but reqwest calls it inside the
/// request's own future, so a task-local scoped around the request carries the
/// step's settings in and the count out without a client per setting.
#[derive(Debug)]
pub(crate) struct Redirects {
    follow: bool,
    max: usize,
    followed: Cell<usize>,
}

tokio::task_local! {
    static REDIRECTS: Redirects;
}

impl Redirects {
    /// Settings for one request.
    pub(crate) fn new(follow: bool, max: usize) -> Self {
        Self {
            follow,
            max,
            followed: Cell::new(0),
        }
    }

    /// Runs `request` with these settings; returns its output and the number
    /// of redirects followed.
    pub(crate) async fn scope<F: Future>(self, request: F) -> (F::Output, usize) {
        REDIRECTS
            .scope(self, async {
                let output = request.await;
                let followed = REDIRECTS.try_with(|r| r.followed.get()).unwrap_or(0);
                (output, followed)
            })
            .await
    }
}

/// The client's redirect policy: the request's [`Redirects`], or reqwest's
/// default of ten when a request runs outside a scope.
fn follow(attempt: Attempt<'_>) -> reqwest::redirect::Action {
    // `previous` starts with the original URL: its length is the number of
    // redirects followed once this one is
    let hops = attempt.previous().len();
    let settings = REDIRECTS.try_with(|r| {
        let allowed = r.follow && hops <= r.max;
        if allowed {
            r.followed.set(hops);
        }
        (r.follow, r.max)
    });
    match settings {
        Ok((false, _)) => attempt.stop(),
        Ok((true, max)) if hops > max => attempt.error(format!(
            "more than {max} redirect{}",
            if max == 1 { "" } else { "s" }
        )),
        Ok(_) => attempt.follow(),
        Err(_) => Policy::default().redirect(attempt),
    }
}
