//! Exit codes, as documented in `docs/cli.md`, and the code of a run.

use planrun_runner::events::RunSummary;

/// Every spec passed (warnings allowed).
pub(crate) const PASSED: u8 = 0;
/// A blocking expectation failed or a step could not be performed.
pub(crate) const FAILED: u8 = 1;
/// A spec is invalid; nothing ran.
pub(crate) const INVALID: u8 = 2;
/// planrun itself failed (a report could not be written, a step failed with
/// an internal error).
pub(crate) const INTERNAL: u8 = 3;
/// The run was interrupted (Ctrl-C) before it finished.
pub(crate) const INTERRUPTED: u8 = 130;

/// The exit code of a finished run: planrun's own failures first, then an
/// interruption that stopped the run before anything failed, then failures.
pub(crate) fn of_run(summary: &RunSummary, report_failed: bool) -> u8 {
    if report_failed || summary.internal_errors > 0 {
        INTERNAL
    } else if summary.interrupted && summary.failed == 0 && summary.cancelled > 0 {
        INTERRUPTED
    } else if summary.failed > 0 || summary.cancelled > 0 {
        FAILED
    } else {
        PASSED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(passed: usize, failed: usize, internal_errors: usize) -> RunSummary {
        RunSummary {
            passed,
            failed,
            internal_errors,
            ..RunSummary::default()
        }
    }

    #[test]
    fn codes_of_a_run() {
        assert_eq!(of_run(&summary(2, 0, 0), false), PASSED);
        assert_eq!(of_run(&summary(1, 1, 0), false), FAILED);
        assert_eq!(of_run(&summary(1, 1, 1), false), INTERNAL);
        assert_eq!(of_run(&summary(2, 0, 0), true), INTERNAL);
        let interrupted = RunSummary {
            cancelled: 1,
            interrupted: true,
            ..summary(1, 0, 0)
        };
        assert_eq!(of_run(&interrupted, false), INTERRUPTED);
        let failed_then_interrupted = RunSummary {
            cancelled: 1,
            interrupted: true,
            ..summary(0, 1, 0)
        };
        assert_eq!(of_run(&failed_then_interrupted, false), FAILED);
    }

    #[test]
    fn an_internal_error_wins_over_an_interruption() {
        let run = RunSummary {
            cancelled: 1,
            interrupted: true,
            ..summary(0, 1, 1)
        };
        assert_eq!(of_run(&run, false), INTERNAL);
    }
}
