//! Tests that cannot run here: a failure, unless the run says skips are expected.
//!
//! libtest has no "skipped" result: a test that returns early is reported `ok`, its reason
//! lost in captured output. So a test that finds the machine or the server unable to run it
//! (no root for a tmpfs, a missing `lz4`, a PostgreSQL too old for what it checks) calls
//! [`skip`]: that fails the test with the reason, unless `PGWIRE_REPL_ALLOW_SKIP=1` is set,
//! in which case it prints `SKIPPED <test>: <reason>` on stderr and returns, and the test
//! returns (or leaves out the part it cannot do). Whoever sets the variable has decided that
//! the skips are expected on that run; CI sets it nowhere.

use std::fmt::Display;

/// Set to `1` to let tests skip what this machine or server cannot do, instead of failing.
pub const ALLOW_SKIP_VAR: &str = "PGWIRE_REPL_ALLOW_SKIP";

/// Whether this run allows skips (`PGWIRE_REPL_ALLOW_SKIP=1`).
pub fn skips_allowed() -> bool {
    std::env::var(ALLOW_SKIP_VAR).is_ok_and(|v| v == "1")
}

/// The current test cannot run (all of it, or the part the caller then leaves out) because
/// of `reason`. Fails the test, unless skips are allowed ([`skips_allowed`]); then it says
/// `SKIPPED <test>: <reason>` on stderr and returns.
///
/// ```no_run
/// if !testenv::is_root() {
///     testenv::skip("it needs root to mount a tmpfs");
///     return;
/// }
/// ```
#[track_caller]
pub fn skip(reason: impl Display) {
    // libtest names each test's thread after the test (unless it runs them on the main
    // thread, with --test-threads=1).
    let thread = std::thread::current();
    let test = thread
        .name()
        .filter(|n| *n != "main")
        .unwrap_or("this test");
    if skips_allowed() {
        eprintln!("SKIPPED {test}: {reason}");
        return;
    }
    panic!(
        "{test} cannot run here: {reason}\n(set {ALLOW_SKIP_VAR}=1 to skip it instead, \
         where that is expected)"
    );
}
