//! Messages on stderr in pg_receivewal's style: `pgwal-recv: [error: |warning: ]text`, and
//! the progress line: on a terminal one line rewritten in place (as `pg_basebackup -P`
//! does), which every other message first erases; elsewhere plain lines.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

pub const PROGNAME: &str = "pgwal-recv";

/// A progress line is on the terminal, without its newline.
static STATUS_SHOWN: AtomicBool = AtomicBool::new(false);

/// Erases the progress line, if one is shown.
pub fn clear_status() {
    if STATUS_SHOWN.swap(false, Ordering::Relaxed) {
        eprint!("\r\x1b[K");
    }
}

/// Whether progress lines rewrite one terminal line.
pub fn status_in_place() -> bool {
    std::io::stderr().is_terminal()
}

/// Shows a progress line: in place on a terminal, else as a plain line.
pub fn status(msg: impl std::fmt::Display) {
    if status_in_place() {
        eprint!("\r\x1b[K{PROGNAME}: {msg}");
        STATUS_SHOWN.store(true, Ordering::Relaxed);
    } else {
        eprintln!("{PROGNAME}: {msg}");
    }
}

/// An informational message (progress, `-v` output, the always-printed notes).
pub fn info(msg: impl std::fmt::Display) {
    clear_status();
    eprintln!("{PROGNAME}: {msg}");
}

pub fn warning(msg: impl std::fmt::Display) {
    clear_status();
    eprintln!("{PROGNAME}: warning: {msg}");
}

pub fn error(msg: impl std::fmt::Display) {
    clear_status();
    eprintln!("{PROGNAME}: error: {msg}");
}

/// Bytes in SI units, as `812 B`, `45.2 kB`, `1.20 GB`: three significant figures.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 999.5 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    match unit {
        0 => format!("{n} B"),
        _ if v >= 99.95 => format!("{v:.0} {}", UNITS[unit]),
        _ if v >= 9.995 => format!("{v:.1} {}", UNITS[unit]),
        _ => format!("{v:.2} {}", UNITS[unit]),
    }
}

/// An I/O error's text without Rust's ` (os error N)` suffix, as strerror() prints it.
pub fn os_error(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => s[..i].to_owned(),
        _ => s,
    }
}

/// A library error and its causes on one line, without Rust's ` (os error N)` suffixes.
pub fn report(e: &pgwire_repl::Error) -> String {
    let mut s = pgwire_repl::error::Report(e).to_string();
    while let Some(i) = s.find(" (os error ") {
        match s[i..].find(')') {
            Some(j) => s.replace_range(i..i + j + 1, ""),
            None => break,
        }
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn bytes_in_si_units() {
        let cases = [
            (0, "0 B"),
            (999, "999 B"),
            (1000, "1.00 kB"),
            (45_230, "45.2 kB"),
            (999_499, "999 kB"),
            (999_500, "1.00 MB"),
            (1_200_000_000, "1.20 GB"),
            (u64::MAX, "18447 PB"),
        ];
        for (n, want) in cases {
            assert_eq!(super::bytes(n), want, "{n}");
        }
    }

    #[test]
    fn os_error_text_matches_strerror() {
        let e = std::io::Error::from_raw_os_error(28);
        assert_eq!(super::os_error(&e), "No space left on device");
    }
}
