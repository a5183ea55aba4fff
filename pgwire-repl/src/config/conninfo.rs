//! libpq's `key=value` connection strings ("conninfo"), the non-URI form that
//! [`Config::parse`] accepts.
//!
//! Hand-written on purpose, after libpq's `conninfo_parse`, for exact compatibility: the
//! same whitespace (C's `isspace`), quoting and backslash escapes, the same strings
//! accepted and refused, and libpq's error messages.
//!
//! See <https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING-KEYWORD-VALUE>.

use super::Config;
use crate::error::{Error, Result};

/// C's `isspace` in the C locale (Rust's ASCII whitespace lacks the vertical tab).
pub(super) fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r')
}

/// libpq's `conninfo_parse`: `key = value` pairs separated by whitespace; a value is either
/// single-quoted or ends at whitespace, and a backslash takes the next character literally
/// in both forms.
pub(super) fn parse_key_value(s: &str) -> Result<Config> {
    let mut config = Config::default();
    let mut chars = s.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if is_space(c) {
            chars.next();
            continue;
        }
        let mut end = s.len();
        while let Some(&(i, c)) = chars.peek() {
            if c == '=' || is_space(c) {
                end = i;
                break;
            }
            chars.next();
        }
        let key = &s[start..end];
        while chars.next_if(|&(_, c)| is_space(c)).is_some() {}
        if chars.next_if(|&(_, c)| c == '=').is_none() {
            return Err(Error::config(format!(
                "missing \"=\" after \"{key}\" in connection info string"
            )));
        }
        while chars.next_if(|&(_, c)| is_space(c)).is_some() {}

        let mut value = String::new();
        if chars.next_if(|&(_, c)| c == '\'').is_some() {
            loop {
                match chars.next() {
                    None => {
                        return Err(Error::config(
                            "unterminated quoted string in connection info string",
                        ))
                    }
                    Some((_, '\'')) => break,
                    Some((_, '\\')) => value.extend(chars.next().map(|(_, c)| c)),
                    Some((_, c)) => value.push(c),
                }
            }
        } else {
            while let Some((_, c)) = chars.next() {
                match c {
                    c if is_space(c) => break,
                    '\\' => value.extend(chars.next().map(|(_, c)| c)),
                    c => value.push(c),
                }
            }
        }
        config.set(key, &value)?;
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::SslMode;

    fn err(s: &str) -> String {
        Config::parse(s).unwrap_err().to_string()
    }

    #[test]
    fn empty_strings_set_nothing() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
        assert_eq!(
            Config::parse(" \t\n\r\u{b}\u{c}").unwrap(),
            Config::default()
        );
        assert_eq!("".parse::<Config>().unwrap(), Config::default());
    }

    #[test]
    fn key_value_pairs() {
        let c: Config = "host=db1 port = 5433  user= alice dbname =postgres \
                         application_name=recv fallback_application_name=fb options=-cx=1 \
                         passfile=/p hostaddr=127.0.0.1 connect_timeout=10 sslmode=allow"
            .parse()
            .unwrap();
        let want = Config {
            host: Some("db1".into()),
            hostaddr: Some("127.0.0.1".into()),
            port: Some("5433".into()),
            user: Some("alice".into()),
            password: None,
            dbname: Some("postgres".into()),
            application_name: Some("recv".into()),
            fallback_application_name: Some("fb".into()),
            options: Some("-cx=1".into()),
            connect_timeout: Some(Duration::from_secs(10)),
            sslmode: Some(SslMode::Allow),
            passfile: Some("/p".into()),
            ..Config::default()
        };
        assert_eq!(c, want);
        // Later keywords win.
        assert_eq!(
            Config::parse("port=1 port=2").unwrap().port.as_deref(),
            Some("2")
        );
    }

    #[test]
    fn quoting_and_escapes() {
        let c =
            Config::parse(r"password='a b\'c\\d' application_name='' options=-c\ x=y\\").unwrap();
        assert_eq!(c.password.as_deref(), Some(r"a b'c\d"));
        assert_eq!(c.application_name.as_deref(), Some(""));
        assert_eq!(c.options.as_deref(), Some(r"-c x=y\"));
        // A quoted value ends at its quote, even with no space after it (as in libpq).
        let c = Config::parse("user='a'dbname=b").unwrap();
        assert_eq!(
            (c.user.as_deref(), c.dbname.as_deref()),
            (Some("a"), Some("b"))
        );
        // A backslash at the very end of an unquoted value is dropped.
        assert_eq!(
            Config::parse(r"user=a\").unwrap().user.as_deref(),
            Some("a")
        );
        // Non-ASCII text passes through.
        assert_eq!(
            Config::parse("dbname='été'").unwrap().dbname.as_deref(),
            Some("été")
        );
        // libpq skips blanks after '=', so an empty unquoted value takes the next word.
        assert_eq!(
            Config::parse("user= dbname=x").unwrap().user.as_deref(),
            Some("dbname=x")
        );
    }

    #[test]
    fn key_value_errors() {
        assert_eq!(
            err("host"),
            "missing \"=\" after \"host\" in connection info string"
        );
        assert_eq!(
            err("host localhost"),
            "missing \"=\" after \"host\" in connection info string"
        );
        assert_eq!(err("foo=bar"), "invalid connection option \"foo\"");
        assert_eq!(err("=bar"), "invalid connection option \"\"");
        assert_eq!(err("HOST=x"), "invalid connection option \"HOST\"");
        assert_eq!(
            err("user='abc"),
            "unterminated quoted string in connection info string"
        );
        assert_eq!(
            err(r"user='abc\'"),
            "unterminated quoted string in connection info string"
        );
        assert_eq!(
            err("password='hunter2"),
            "unterminated quoted string in connection info string"
        );
    }

    proptest::proptest! {
        #[test]
        fn parse_key_value_never_panics(s in "([a-z_]{0,12}[ =']{0,3}[a-z0-9\\\\' ]{0,8})*") {
            let _ = Config::parse(&s);
        }
    }
}
