//! [`ServerVersion`]: which PostgreSQL the server is, for the choices that depend on it
//! (a command's syntax, whether a command exists) and for messages.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A PostgreSQL server version, held in PostgreSQL's numeric form (`server_version_num`,
/// libpq's `PQserverVersion`): 150004 for 15.4, 90624 for 9.6.24. Versions compare in
/// release order and display as their text, `15.4` or `9.6.24`.
///
/// The server reports its version at startup in the `server_version` ParameterStatus, which
/// [`FromStr`] parses. A server that reports none leaves it unknown (`None` in
/// [`ServerInfo::version`](crate::protocol::startup::ServerInfo::version)); every check then
/// picks what an old server would get, as libpq's checks do with `PQserverVersion`'s 0.
///
/// ```
/// use pgwire_repl::ServerVersion;
///
/// let v: ServerVersion = "15.4 (Debian 15.4-1.pgdg120+1)".parse().unwrap();
/// assert_eq!((v.num(), v.major(), v.to_string()), (150004, 15, "15.4".to_owned()));
/// assert!(v.at_least(15) && !v.at_least(16));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerVersion(u32);

impl ServerVersion {
    /// From the numeric form: 150004 for 15.4.
    pub const fn from_num(num: u32) -> ServerVersion {
        ServerVersion(num)
    }

    /// The numeric form: 150004 for 15.4.
    pub const fn num(self) -> u32 {
        self.0
    }

    /// The major version: 15 for 15.4. Before 10 a major version had two numbers (9.6);
    /// this is then the first (9).
    pub const fn major(self) -> u32 {
        self.0 / 10_000
    }

    /// True for major version `major` and later: `at_least(15)` holds from 15.0 on.
    pub const fn at_least(self, major: u32) -> bool {
        self.major() >= major
    }
}

impl FromStr for ServerVersion {
    type Err = Error;

    /// Parses `server_version` as the server reports it: `15.4 (Debian 15.4-1.pgdg120+1)`,
    /// `16beta1` (160000), `9.6.24`. What follows the numbers is ignored.
    fn from_str(s: &str) -> Result<ServerVersion> {
        let bad = || Error::config(format!("invalid server version: \"{s}\""));
        let mut parts = s.split(|c: char| !c.is_ascii_digit());
        let major: u32 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let num = if major >= 10 {
            major
                .checked_mul(10_000)
                .and_then(|n| n.checked_add(minor.min(9_999)))
                .ok_or_else(bad)?
        } else {
            let patch: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
            major * 10_000 + minor.min(99) * 100 + patch.min(99)
        };
        Ok(ServerVersion(num))
    }
}

impl fmt::Display for ServerVersion {
    /// `15.4`; before 10, three numbers: `9.6.24`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        if v >= 100_000 {
            write!(f, "{}.{}", v / 10_000, v % 10_000)
        } else {
            write!(f, "{}.{}.{}", v / 10_000, v / 100 % 100, v % 100)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Option<u32> {
        s.parse::<ServerVersion>().ok().map(ServerVersion::num)
    }

    #[test]
    fn server_versions() {
        let cases = [
            ("15.4", Some(150004)),
            ("15.4 (Debian 15.4-1.pgdg120+1)", Some(150004)),
            ("16beta1", Some(160000)),
            ("18devel", Some(180000)),
            ("10.23", Some(100023)),
            ("9.6.24", Some(90624)),
            ("9.6", Some(90600)),
            ("", None),
            ("devel", None),
            ("99999999999", None),
        ];
        for (s, expected) in cases {
            assert_eq!(parse(s), expected, "{s:?}");
        }
    }

    #[test]
    fn version_text() {
        assert_eq!(ServerVersion::from_num(150004).to_string(), "15.4");
        assert_eq!(ServerVersion::from_num(90624).to_string(), "9.6.24");
    }

    #[test]
    fn majors_and_order() {
        let v = |n| ServerVersion::from_num(n);
        assert_eq!((v(150004).major(), v(90624).major()), (15, 9));
        assert!(v(150000).at_least(15) && v(180001).at_least(15));
        assert!(!v(149999).at_least(15) && !v(90624).at_least(10));
        assert!(v(90624) < v(100000) && v(140011) < v(150000));
    }
}
