//! Serves the fixture servers until stopped, for measuring planrun by hand
//! or from a script (`bench/hostile`) against the same routes its tests use.
//!
//! Prints one line per server, `http http://127.0.0.1:PORT` and
//! `ws ws://127.0.0.1:PORT`, then serves until stdin closes or the process
//! is stopped.
//!
//! ```text
//! cargo run -p planrun-testkit --example serve
//! ```

use std::io::Read as _;

use planrun_testkit::{FixtureServer, WsServer};

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let (http, ws) =
        runtime.block_on(async { (FixtureServer::start().await, WsServer::start().await) });
    println!("http http://{}", http.addr);
    println!("ws ws://{}", ws.addr);
    // the runtime's workers serve while this thread waits for the end of
    // stdin: whoever started the servers closes it, or stops the process
    let mut buf = [0u8; 64];
    while let Ok(1..) = std::io::stdin().read(&mut buf) {}
    drop((http, ws));
}
