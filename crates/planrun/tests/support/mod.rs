//! What several test files of the binary share: the workspace root, demo
//! targets on free ports, and the seed specs that need only them.
#![allow(dead_code, reason = "each test binary uses a part of these helpers")]

use std::path::{Path, PathBuf};

use planrun_testkit::{DemoServer, Flavor};

/// The workspace's root directory.
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// The seed specs that need only the demo target, relative to the
/// workspace root: those at the top of `specs/` (its subdirectories need
/// more: `specs/postgres/` a database, run by tests/postgres.rs).
pub(crate) fn demo_specs() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(root().join("specs"))
        .expect("specs/ reads")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| {
            matches!(
                Path::new(n).extension().and_then(|e| e.to_str()),
                Some("toml" | "yaml")
            ) && n != "planrun.toml"
        })
        .map(|n| format!("specs/{n}"))
        .collect();
    files.sort();
    files
}

/// Demo targets (wsgi and asgi flavors) on free ports, for one test; they
/// serve as long as the runtime lives.
pub(crate) struct Targets {
    pub(crate) runtime: tokio::runtime::Runtime,
    pub(crate) wsgi: DemoServer,
    pub(crate) asgi: DemoServer,
}

impl Targets {
    pub(crate) fn start() -> Targets {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let any = "127.0.0.1:0".parse().expect("addr");
        let wsgi = runtime
            .block_on(DemoServer::start(any, Flavor::Wsgi))
            .expect("wsgi demo");
        let asgi = runtime
            .block_on(DemoServer::start(any, Flavor::Asgi))
            .expect("asgi demo");
        Targets {
            runtime,
            wsgi,
            asgi,
        }
    }

    /// `--var base_url=… --var asgi_url=…` for the two.
    pub(crate) fn vars(&self) -> Vec<String> {
        vec![
            String::from("--var"),
            format!("base_url={}", self.wsgi.base_url()),
            String::from("--var"),
            format!("asgi_url={}", self.asgi.base_url()),
        ]
    }
}
