//! Polling until something becomes true.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Calls `cond` every 50 ms until it returns true; fails after `timeout` with
/// "timed out after …: waiting for {what}".
///
/// ```
/// use std::time::Duration;
/// let mut n = 0;
/// testenv::wait_for("n to reach 3", Duration::from_secs(5), || {
///     n += 1;
///     n >= 3
/// })
/// .unwrap();
/// ```
pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) -> Result<()> {
    let start = Instant::now();
    loop {
        if cond() {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            return Err(Error::new(format!(
                "timed out after {timeout:?}: waiting for {what}"
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
