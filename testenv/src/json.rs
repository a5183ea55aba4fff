//! Just enough JSON for what npm prints: the string literals of a document, in order.
//!
//! Keys and values alike, so `{"a": "x", "b": ["y", "z"]}` gives `a x b y z`; a caller
//! looks for a key and takes the string after it. Numbers, booleans and structure are
//! skipped, which is all the npm output and `pg-symlinks.json` need.

/// Every string literal in `text`, unescaped. An unterminated string ends the list.
pub(crate) fn strings(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut s = String::new();
        loop {
            match chars.next() {
                None => return out,
                Some('"') => break,
                Some('\\') => match chars.next() {
                    Some('n') => s.push('\n'),
                    Some('t') => s.push('\t'),
                    Some('r') => s.push('\r'),
                    Some('b') => s.push('\u{8}'),
                    Some('f') => s.push('\u{c}'),
                    Some('u') => {
                        let hex: String = chars.by_ref().take(4).collect();
                        let c = u32::from_str_radix(&hex, 16)
                            .ok()
                            .and_then(char::from_u32)
                            .unwrap_or('\u{fffd}');
                        s.push(c);
                    }
                    Some(other) => s.push(other),
                    None => return out,
                },
                Some(other) => s.push(other),
            }
        }
        out.push(s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::strings;

    #[test]
    fn string_literals_in_order() {
        let text = r#"[{"source":"native/lib/a.so.1","target":"a\"b\\c"}, 3, true, "\u0041"]"#;
        assert_eq!(
            strings(text),
            ["source", "native/lib/a.so.1", "target", "a\"b\\c", "A"]
        );
        assert_eq!(strings(r#"["ok", "unterminated"#), ["ok"]);
        assert!(strings("[]").is_empty());
    }
}
