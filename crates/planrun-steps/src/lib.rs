//! planrun's built-in step executors, one module per step kind, each behind a
//! cargo feature (`http`, `sse`, `ws`, `exec`, `wait`).
//!
//! This crate owns how a kind talks to the outside world and the shape of its
//! result document. It must not check expectations, retry, print or know about
//! other steps: the runner does that with the documents returned here. What a
//! kind's configuration may say is the spec crate's (`planrun_spec::kinds`);
//! the recipe for a new kind is in this crate's README.md.
//!
//! ```
//! use planrun_spec::model::StepKind;
//!
//! planrun_steps::install_crypto_provider();
//! let registry = planrun_steps::registry();
//! for kind in StepKind::ALL {
//!     if registry.has(*kind) {
//!         println!("`{}` steps can run", kind.key());
//!     }
//! }
//! ```

#[cfg(any(feature = "sse", feature = "ws", feature = "sql"))]
mod kept;
#[cfg(any(feature = "sse", feature = "ws"))]
mod pace;
#[cfg(any(feature = "exec", feature = "wait", feature = "docker"))]
mod probe;
mod util;

use planrun_runner::executor::Registry;

/// Declares the executors: each line is a module behind the cargo feature of
/// the same name, and its executor in [`registry`].
macro_rules! executors {
    ($( $feature:literal => $module:ident :: $executor:ident, )*) => {
        $(
            #[cfg(feature = $feature)]
            pub mod $module;
        )*

        /// A registry holding every executor compiled into this build.
        ///
        /// A kind left out by cargo features is simply absent; planning turns
        /// a step of that kind into a diagnostic.
        pub fn registry() -> Registry {
            #[allow(unused_mut, reason = "every feature may be off")]
            let mut registry = Registry::new();
            $(
                #[cfg(feature = $feature)]
                registry.register($module::$executor::new());
            )*
            registry
        }
    };
}

executors! {
    "http" => http::HttpExecutor,
    "sse" => sse::SseExecutor,
    "ws" => ws::WsExecutor,
    "exec" => exec::ExecExecutor,
    "wait" => wait::WaitExecutor,
    "sql" => sql::SqlExecutor,
    "docker" => docker::DockerExecutor,
}

/// Installs rustls' `ring` crypto provider as the process default.
///
/// reqwest is built without a provider of its own and panics when it builds a
/// client with none installed, so the binary and test harnesses call this
/// first. Calling it again, or after another provider was installed, does
/// nothing. Without the `http` feature there is no TLS and nothing to do.
pub fn install_crypto_provider() {
    #[cfg(feature = "http")]
    {
        // `Err` means a provider is already installed, which is all we want
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
