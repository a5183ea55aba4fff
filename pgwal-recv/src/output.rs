//! Messages on stderr in pg_receivewal's style: `pgwal-recv: [error: |warning: ]text`.

pub const PROGNAME: &str = "pgwal-recv";

/// An informational message (progress, `-v` output, the always-printed notes).
pub fn info(msg: impl std::fmt::Display) {
    eprintln!("{PROGNAME}: {msg}");
}

pub fn warning(msg: impl std::fmt::Display) {
    eprintln!("{PROGNAME}: warning: {msg}");
}

pub fn error(msg: impl std::fmt::Display) {
    eprintln!("{PROGNAME}: error: {msg}");
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
    fn os_error_text_matches_strerror() {
        let e = std::io::Error::from_raw_os_error(28);
        assert_eq!(super::os_error(&e), "No space left on device");
    }
}
