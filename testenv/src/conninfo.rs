//! libpq `key=value` connection strings.

/// Quotes one conninfo value: single quotes around it, `\` before `'` and `\`.
///
/// ```
/// assert_eq!(testenv::quote_conninfo_value("a b'c"), r"'a b\'c'");
/// ```
pub fn quote_conninfo_value(value: &str) -> String {
    pgwal_recv::basebackup::inject::quote_conninfo_value(value)
}

/// Builds `k1='v1' k2='v2' ...`.
pub(crate) fn build(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", quote_conninfo_value(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Builds `k1=v1 k2=v2 ...`, quoting only the values that need it (empty, or holding a
/// blank, `'` or `\`): easier to read and to paste.
pub(crate) fn build_plain(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let plain = !v.is_empty()
                && !v
                    .chars()
                    .any(|c| c.is_whitespace() || c == '\'' || c == '\\');
            if plain {
                format!("{k}={v}")
            } else {
                format!("{k}={}", quote_conninfo_value(v))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_every_value() {
        assert_eq!(
            build(&[("host", "127.0.0.1"), ("password", r"a\b 'c'")]),
            r"host='127.0.0.1' password='a\\b \'c\''"
        );
        assert_eq!(quote_conninfo_value(""), "''");
    }

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(
            build_plain(&[("host", "127.0.0.1"), ("password", "a b"), ("x", "")]),
            r"host=127.0.0.1 password='a b' x=''"
        );
    }
}
