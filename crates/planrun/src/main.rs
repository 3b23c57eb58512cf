//! The `planrun` command: finds spec files, plans them, runs them and wires
//! run events to reporters. Exit codes are documented in [`exit`].

mod cli;
mod curl;
mod discover;
mod exit;
mod planned;
mod select;

use std::io::Write as _;
use std::process::ExitCode;

// a run allocates many small, short-lived values per step (result documents,
// headers, reports); mimalloc serves them for a fraction of glibc's cost
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // reqwest with rustls needs a process-wide crypto provider before any client exists
    planrun_steps::install_crypto_provider();
    // many concurrent streams, sockets and processes each hold a file: take
    // the soft open-file limit up to the hard one (a step that still runs out
    // says so, naming the limit); failing to raise it is no reason to stop
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let code = cli::main();
    // a closed stdout (`planrun list | head`) is not a failure
    let _ = std::io::stdout().flush();
    ExitCode::from(code)
}
