//! Connection URIs:
//! `postgresql://[user[:password]@][host][:port][/dbname][?key=value&...]`.
//!
//! Hand-written on purpose, after libpq's `conninfo_uri_parse_options`, for exact
//! compatibility: a general URL parser would normalize, accept or refuse differently (host
//! lists with several ports, bracketed IPv6 addresses, percent-encoded socket directories,
//! an empty host) and word its errors its own way. Every part is percent-decoded, and query
//! parameters go through [`Config::set`]. Error messages never quote the URI (it may hold a
//! password) and never show any part of the password.
//!
//! See <https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING-URIS>.

use super::{is_known_keyword, Config};
use crate::error::{Error, Result};

/// The rest of `s` after `postgresql://` or `postgres://` (case-sensitive, as in libpq).
pub(super) fn strip_scheme(s: &str) -> Option<&str> {
    s.strip_prefix("postgresql://")
        .or_else(|| s.strip_prefix("postgres://"))
}

/// Parses what follows the scheme.
pub(super) fn parse(rest: &str) -> Result<Config> {
    let mut config = Config::default();

    // Credentials end at an '@' that comes before any '/'.
    let mut p = rest;
    if let Some(at) = rest
        .find(['@', '/'])
        .filter(|&i| rest[i..].starts_with('@'))
    {
        let (user, password) = match rest[..at].split_once(':') {
            Some((user, password)) => (user, Some(password)),
            None => (&rest[..at], None),
        };
        if !user.is_empty() {
            config.set("user", &decode(user, false)?)?;
        }
        if let Some(password) = password.filter(|p| !p.is_empty()) {
            config.set("password", &decode(password, true)?)?;
        }
        p = &rest[at + 1..];
    }

    // Hosts: `host[:port]` entries separated by commas, each host possibly a bracketed
    // IPv6 address; they become the comma-separated `host` and `port` lists.
    let mut hosts = Vec::new();
    let mut ports = Vec::new();
    loop {
        let (host, after_host) = if let Some(bracketed) = p.strip_prefix('[') {
            let close = bracketed
                .find(']')
                .ok_or_else(|| Error::config("missing \"]\" after IPv6 host address in URI"))?;
            if close == 0 {
                return Err(Error::config("IPv6 host address may not be empty in URI"));
            }
            let after = &bracketed[close + 1..];
            if let Some(c) = after.chars().next().filter(|c| !":/?,".contains(*c)) {
                return Err(Error::config(format!(
                    "unexpected character \"{c}\" after IPv6 host address in URI (expected \":\" or \"/\")"
                )));
            }
            (&bracketed[..close], after)
        } else {
            p.split_at(p.find([':', '/', '?', ',']).unwrap_or(p.len()))
        };
        let (port, rest) = match after_host.strip_prefix(':') {
            Some(r) => r.split_at(r.find(['/', '?', ',']).unwrap_or(r.len())),
            None => ("", after_host),
        };
        hosts.push(decode(host, false)?);
        ports.push(decode(port, false)?);
        match rest.strip_prefix(',') {
            Some(next) => p = next,
            None => {
                p = rest;
                break;
            }
        }
    }
    if hosts.len() > 1 || hosts.iter().any(|h| !h.is_empty()) {
        config.set("host", &hosts.join(","))?;
    }
    if ports.iter().any(|p| !p.is_empty()) {
        config.set("port", &ports.join(","))?;
    }

    if let Some(r) = p.strip_prefix('/') {
        let (dbname, r) = r.split_at(r.find('?').unwrap_or(r.len()));
        // An empty dbname stays unset, so that PGDATABASE still applies.
        if !dbname.is_empty() {
            config.set("dbname", &decode(dbname, false)?)?;
        }
        p = r;
    }
    if let Some(query) = p.strip_prefix('?') {
        parse_query(query, &mut config)?;
    }
    Ok(config)
}

/// `key=value` pairs separated by `&` (libpq's `conninfo_uri_parse_params`).
fn parse_query(mut query: &str, config: &mut Config) -> Result<()> {
    while !query.is_empty() {
        let (param, rest) = match query.split_once('&') {
            Some((param, rest)) => (param, rest),
            None => (query, ""),
        };
        query = rest;
        let Some((key, value)) = param.split_once('=') else {
            return Err(Error::config(format!(
                "missing key/value separator \"=\" in URI query parameter: \"{param}\""
            )));
        };
        if value.contains('=') {
            return Err(Error::config(format!(
                "extra key/value separator \"=\" in URI query parameter: \"{key}\""
            )));
        }
        let key = decode(key, false)?;
        let value = decode(value, key == "password")?;
        // JDBC's spelling, which libpq accepts too.
        let (key, value) = match (key.as_str(), value.as_str()) {
            ("ssl", "true") => ("sslmode".to_owned(), "require".to_owned()),
            _ => (key, value),
        };
        if !is_known_keyword(&key) {
            return Err(Error::config(format!(
                "invalid URI query parameter: \"{key}\""
            )));
        }
        config.set(&key, &value)?;
    }
    Ok(())
}

/// Percent-decodes one part of the URI. A `secret` part (the password) is never quoted in
/// the error.
fn decode(s: &str, secret: bool) -> Result<String> {
    decode_bytes(s).map_err(|e| {
        Error::config(match e {
            _ if secret => "invalid percent-encoding in the password in URI".to_owned(),
            DecodeError::BadToken(token) => format!("invalid percent-encoded token: \"{token}\""),
            DecodeError::Nul => format!("forbidden value %00 in percent-encoded value: \"{s}\""),
            DecodeError::Utf8 => format!("percent-decoded value is not valid UTF-8: \"{s}\""),
        })
    })
}

enum DecodeError {
    BadToken(String),
    Nul,
    Utf8,
}

fn decode_bytes(s: &str) -> std::result::Result<String, DecodeError> {
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('%') {
        out.extend_from_slice(&rest.as_bytes()[..i]);
        let tail = &rest[i + 1..];
        let byte = tail
            .get(..2)
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        let Some(byte) = byte else {
            let token: String = rest[i..].chars().take(3).collect();
            return Err(DecodeError::BadToken(token));
        };
        if byte == 0 {
            return Err(DecodeError::Nul);
        }
        out.push(byte);
        rest = &tail[2..];
    }
    out.extend_from_slice(rest.as_bytes());
    String::from_utf8(out).map_err(|_| DecodeError::Utf8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SslMode;
    use std::time::Duration;

    fn err(s: &str) -> String {
        Config::parse(s).unwrap_err().to_string()
    }

    #[test]
    fn full_uri() {
        let c = Config::parse(
            "postgresql://alice:s%40cr%3Aet@db.example.com:5433/my%20db\
             ?application_name=wal%20recv&connect_timeout=10&sslmode=disable",
        )
        .unwrap();
        assert_eq!(c.user.as_deref(), Some("alice"));
        assert_eq!(c.password.as_deref(), Some("s@cr:et"));
        assert_eq!(c.host.as_deref(), Some("db.example.com"));
        assert_eq!(c.port.as_deref(), Some("5433"));
        assert_eq!(c.dbname.as_deref(), Some("my db"));
        assert_eq!(c.application_name.as_deref(), Some("wal recv"));
        assert_eq!(c.connect_timeout, Some(Duration::from_secs(10)));
        assert_eq!(c.sslmode, Some(SslMode::Disable));
    }

    #[test]
    fn short_scheme_and_empty_parts() {
        assert_eq!(Config::parse("postgres://").unwrap(), Config::default());
        assert_eq!(Config::parse("postgresql://").unwrap(), Config::default());
        assert_eq!(Config::parse("postgresql:///").unwrap(), Config::default());
        assert_eq!(Config::parse("postgresql://?").unwrap(), Config::default());
        let c = Config::parse("postgres:///mydb").unwrap();
        assert_eq!(c.dbname.as_deref(), Some("mydb"));
        assert_eq!(c.host, None);
        let c = Config::parse("postgresql://h:/").unwrap();
        assert_eq!((c.host.as_deref(), c.port.as_deref()), (Some("h"), None));
        // The scheme is case-sensitive, as in libpq: this is a key=value string.
        assert_eq!(
            err("POSTGRESQL://h"),
            "missing \"=\" after \"POSTGRESQL://h\" in connection info string"
        );
    }

    #[test]
    fn credentials() {
        let c = Config::parse("postgresql://alice@h").unwrap();
        assert_eq!(
            (c.user.as_deref(), c.password.as_deref()),
            (Some("alice"), None)
        );
        let c = Config::parse("postgresql://alice:@h").unwrap();
        assert_eq!(
            (c.user.as_deref(), c.password.as_deref()),
            (Some("alice"), None)
        );
        let c = Config::parse("postgresql://:pw@h").unwrap();
        assert_eq!(
            (c.user.as_deref(), c.password.as_deref()),
            (None, Some("pw"))
        );
        let c = Config::parse("postgresql://a%2Fb:x%2Fy@h/db").unwrap();
        assert_eq!(
            (c.user.as_deref(), c.password.as_deref()),
            (Some("a/b"), Some("x/y"))
        );
        // An '@' after the first '/' belongs to the database name.
        let c = Config::parse("postgresql://h/d@b").unwrap();
        assert_eq!((c.user, c.dbname.as_deref()), (None, Some("d@b")));
    }

    #[test]
    fn ipv6_hosts() {
        let c = Config::parse("postgresql://[::1]:5433/db").unwrap();
        assert_eq!(
            (c.host.as_deref(), c.port.as_deref()),
            (Some("::1"), Some("5433"))
        );
        let c = Config::parse("postgresql://u@[2001:db8::7]?port=6000").unwrap();
        assert_eq!(
            (c.host.as_deref(), c.port.as_deref()),
            (Some("2001:db8::7"), Some("6000"))
        );
        let c = Config::parse("postgresql://[fe80::1]").unwrap();
        assert_eq!(c.host.as_deref(), Some("fe80::1"));
        assert_eq!(
            err("postgresql://[::1"),
            "missing \"]\" after IPv6 host address in URI"
        );
        assert_eq!(
            err("postgresql://[]/db"),
            "IPv6 host address may not be empty in URI"
        );
        assert_eq!(
            err("postgresql://[::1]x"),
            "unexpected character \"x\" after IPv6 host address in URI (expected \":\" or \"/\")"
        );
    }

    #[test]
    fn socket_directories() {
        let c = Config::parse("postgresql://%2Fvar%2Frun%2Fpostgresql:5433/db").unwrap();
        assert_eq!(c.host.as_deref(), Some("/var/run/postgresql"));
        assert_eq!(c.port.as_deref(), Some("5433"));
        let c = Config::parse("postgresql:///db?host=/tmp&port=5444").unwrap();
        assert_eq!(c.host.as_deref(), Some("/tmp"));
        assert_eq!(c.port.as_deref(), Some("5444"));
        assert_eq!(c.dbname.as_deref(), Some("db"));
        let c = Config::parse("postgresql:///db?host=%2Fsrv%2Fpg%20sock").unwrap();
        assert_eq!(c.host.as_deref(), Some("/srv/pg sock"));
    }

    #[test]
    fn query_parameters() {
        let c = Config::parse(
            "postgresql://h/db?options=-c%20search_path%3Dx&fallback_application_name=f&\
             sslrootcert=/x&replication=true&dbname=other&user=bob",
        )
        .unwrap();
        assert_eq!(c.options.as_deref(), Some("-c search_path=x"));
        assert_eq!(c.fallback_application_name.as_deref(), Some("f"));
        // Query parameters are applied after the path, so they win.
        assert_eq!(c.dbname.as_deref(), Some("other"));
        assert_eq!(c.user.as_deref(), Some("bob"));
        assert_eq!(
            Config::parse("postgresql://h?ssl=true").unwrap().sslmode,
            Some(SslMode::Require)
        );
        // A trailing '&' ends the list quietly, as in libpq.
        assert_eq!(
            Config::parse("postgresql://h?port=1&")
                .unwrap()
                .port
                .as_deref(),
            Some("1")
        );
        // A value may be empty.
        assert_eq!(
            Config::parse("postgresql://h?user=")
                .unwrap()
                .user
                .as_deref(),
            Some("")
        );
    }

    #[test]
    fn query_errors() {
        assert_eq!(
            err("postgresql://h?foo=1"),
            "invalid URI query parameter: \"foo\""
        );
        assert_eq!(
            err("postgresql://h?ssl=false"),
            "invalid URI query parameter: \"ssl\""
        );
        assert_eq!(
            err("postgresql://h?port"),
            "missing key/value separator \"=\" in URI query parameter: \"port\""
        );
        assert_eq!(
            err("postgresql://h?port=1&&user=2"),
            "missing key/value separator \"=\" in URI query parameter: \"\""
        );
        assert_eq!(
            err("postgresql://h?password=a=b"),
            "extra key/value separator \"=\" in URI query parameter: \"password\""
        );
        assert_eq!(
            err("postgresql://h?sslmode=bogus"),
            "invalid sslmode value: \"bogus\""
        );
        assert_eq!(err("postgresql://h:x/db"), "invalid port number: \"x\"");
        assert_eq!(err("postgresql://h:0"), "invalid port number: \"0\"");
        assert_eq!(
            err("postgresql://h?connect_timeout=soon"),
            "invalid integer value \"soon\" for connection option \"connect_timeout\""
        );
    }

    #[test]
    fn multiple_hosts() {
        let hp = |uri: &str| {
            let c = Config::parse(uri).unwrap();
            (c.host, c.port)
        };
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(hp("postgresql://a,b/db"), (s("a,b"), None));
        assert_eq!(hp("postgresql://a:1,b:2/db"), (s("a,b"), s("1,2")));
        assert_eq!(hp("postgresql://a,b:2"), (s("a,b"), s(",2")));
        assert_eq!(hp("postgresql://[::1]:1,[::2]"), (s("::1,::2"), s("1,")));
        assert_eq!(hp("postgresql://a%2Cb/db"), (s("a,b"), None));
        assert_eq!(hp("postgresql:///db?host=a,b"), (s("a,b"), None));
        assert_eq!(
            hp("postgresql://u:pw@a:1,b:2/db?application_name=x"),
            (s("a,b"), s("1,2"))
        );
        assert_eq!(err("postgresql://a:1,b:x/db"), "invalid port number: \"x\"");
    }

    #[test]
    fn percent_decoding_errors() {
        assert_eq!(
            err("postgresql://h/%zz"),
            "invalid percent-encoded token: \"%zz\""
        );
        assert_eq!(
            err("postgresql://h/db%2"),
            "invalid percent-encoded token: \"%2\""
        );
        assert_eq!(
            err("postgresql://h/db%"),
            "invalid percent-encoded token: \"%\""
        );
        assert_eq!(
            err("postgresql://h/%é1"),
            "invalid percent-encoded token: \"%é1\""
        );
        assert_eq!(
            err("postgresql://%G1h"),
            "invalid percent-encoded token: \"%G1\""
        );
        assert_eq!(
            err("postgresql://h?application_name=%41%00"),
            "forbidden value %00 in percent-encoded value: \"%41%00\""
        );
        assert_eq!(
            err("postgresql://h/%ff"),
            "percent-decoded value is not valid UTF-8: \"%ff\""
        );
        // Multi-byte UTF-8 decodes.
        let c = Config::parse("postgresql://h/%C3%A9t%c3%a9").unwrap();
        assert_eq!(c.dbname.as_deref(), Some("été"));
    }

    #[test]
    fn password_never_in_errors() {
        for uri in [
            "postgresql://u:hunter2%zz@h/db",
            "postgresql://u:hunter2%00@h/db",
            "postgresql://u:hunter2%ff@h/db",
            "postgresql://h/db?password=hunter2%zz",
            "postgresql://h/db?password=hunter2%00",
        ] {
            let e = err(uri);
            assert_eq!(e, "invalid percent-encoding in the password in URI");
            assert!(!e.contains("hunter2"), "{e}");
        }
        // Errors elsewhere in a URI with a password do not quote the URI either.
        for uri in [
            "postgresql://u:hunter2@[::1",
            "postgresql://u:hunter2@h:x",
            "postgresql://u:hunter2@h/db?x=1",
            "postgresql://u:hunter2@a,b:x",
        ] {
            assert!(!err(uri).contains("hunter2"), "{uri}");
        }
    }
}
