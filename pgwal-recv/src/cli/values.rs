//! Option values read as pg_receivewal reads them: `-s` as `option_parse_int`, `-E` as
//! `sscanf("%X/%X")`, `--metrics-listen` resolved now; and our own counts and durations.

use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;
use std::time::Duration;

use pgwire_repl::Lsn;

use super::CliError;

/// The largest `-s`: pg_receivewal keeps the interval in milliseconds in an `int`.
const MAX_STATUS_INTERVAL: i64 = i32::MAX as i64 / 1000;

/// `--metrics-listen`: `IP:PORT` or `NAME:PORT` (resolved now; the first address is used).
pub(super) fn parse_listen(v: &str) -> Result<SocketAddr, CliError> {
    let invalid = || {
        CliError::fatal(format!(
            "invalid value \"{v}\" for option --metrics-listen: expected HOST:PORT"
        ))
    };
    v.to_socket_addrs()
        .map_err(|_| invalid())?
        .next()
        .ok_or_else(invalid)
}

/// `--duration`: whole seconds, at least 1.
pub(super) fn parse_duration(v: &str) -> Result<Duration, CliError> {
    match v.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(Duration::from_secs(n)),
        _ => Err(CliError::fatal(format!(
            "invalid value \"{v}\" for option --duration: expected a number of seconds"
        ))),
    }
}

/// `-E`: an `X/Y` LSN; `0/0` is pg_receivewal's "no end position".
pub(super) fn parse_endpos(v: &str) -> Result<Option<Lsn>, CliError> {
    let lsn = Lsn::from_str(v)
        .map_err(|_| CliError::fatal(format!("could not parse end position \"{v}\"")))?;
    Ok((u64::from(lsn) != 0).then_some(lsn))
}

/// C's `isspace` in the C locale (Rust's ASCII whitespace lacks `\v`).
pub(super) fn is_c_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// A whole number in `min..=max` for option `name`.
pub(super) fn parse_count(name: &str, v: &str, min: usize, max: usize) -> Result<usize, CliError> {
    match v.trim().parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        Ok(_) => Err(CliError::fatal(format!(
            "{name} must be in range {min}..{max}"
        ))),
        Err(_) => Err(CliError::fatal(format!(
            "invalid value \"{v}\" for option {name}"
        ))),
    }
}

/// `-s` as PostgreSQL's `option_parse_int` reads it: `strtol` (leading blanks and a sign
/// allowed; no digits at all reads as 0), then only blanks may follow.
pub(super) fn parse_status_interval(v: &str) -> Result<u64, CliError> {
    const NAME: &str = "-s/--status-interval";
    let invalid = || CliError::fatal(format!("invalid value \"{v}\" for option {NAME}"));
    let t = v.trim_start_matches(is_c_space);
    let (negative, unsigned) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let digits = unsigned.bytes().take_while(u8::is_ascii_digit).count();
    // Without digits strtol consumes nothing, so the whole text must be blank.
    let rest = if digits == 0 { v } else { &unsigned[digits..] };
    if !rest.chars().all(is_c_space) {
        return Err(invalid());
    }
    // More digits than an i64 holds is out of range, as strtol's ERANGE is.
    let magnitude = match unsigned[..digits].parse::<i64>() {
        Ok(n) => n,
        Err(_) if digits == 0 => 0,
        Err(_) => i64::MAX,
    };
    let value = if negative { -magnitude } else { magnitude };
    if !(0..=MAX_STATUS_INTERVAL).contains(&value) {
        return Err(CliError::fatal(format!(
            "{NAME} must be in range 0..{MAX_STATUS_INTERVAL}"
        )));
    }
    Ok(value.unsigned_abs())
}
