//! Exit codes, as documented in `docs/cli.md`.

/// Every spec passed (warnings allowed).
pub(crate) const PASSED: u8 = 0;
/// A blocking expectation failed or a step could not be performed.
pub(crate) const FAILED: u8 = 1;
/// A spec is invalid; nothing ran.
pub(crate) const INVALID: u8 = 2;
/// planrun itself failed (a report could not be written, an internal error).
pub(crate) const INTERNAL: u8 = 3;
/// The run was interrupted (Ctrl-C) before it finished.
pub(crate) const INTERRUPTED: u8 = 130;
