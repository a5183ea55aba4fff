//! The password file: `~/.pgpass`, or the one `PGPASSFILE` or `passfile` names.
//!
//! Each line is `hostname:port:database:username:password`. A field that is exactly `*`
//! matches anything; `\` makes the next character (`:` or `\`) literal; lines starting with
//! `#` are comments; the first matching line wins. A file with any group or other
//! permission bits is ignored with a warning, as libpq does (`passwordFromFile` in
//! `fe-connect.c`).
//!
//! The line parser is hand-written on purpose, after `passwordFromFile`, for exact
//! compatibility: the same escapes, wildcards, comment and line-ending handling, so that a
//! file that works with libpq gives the same password here. [`lookup`] is the one function
//! that reads the file.
//!
//! See <https://www.postgresql.org/docs/current/libpq-pgpass.html>.

use std::path::Path;

/// What a line must match.
pub(crate) struct Key<'a> {
    /// Any of these names matches the host field (a socket directory may also be known as
    /// `localhost`).
    pub hosts: &'a [&'a str],
    pub port: u16,
    /// The database name, or `replication` for a replication connection.
    pub dbname: &'a str,
    pub user: &'a str,
}

/// The password for `key` from the file at `path`, if the file is usable and has a matching
/// line with a non-empty password. A missing or unreadable file is silently ignored;
/// anything else that makes the file unusable is reported in `warnings`.
pub(crate) fn lookup(path: &Path, key: &Key<'_>, warnings: &mut Vec<String>) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() {
        warnings.push(format!(
            "password file \"{}\" is not a plain file",
            path.display()
        ));
        return None;
    }
    if insecure(&meta) {
        warnings.push(format!(
            "password file \"{}\" has group or world access; permissions should be u=rw (0600) or less",
            path.display()
        ));
        return None;
    }
    let contents = std::fs::read(path).ok()?;
    let password = find(&contents, key)?;
    match String::from_utf8(password) {
        Ok(password) => Some(password),
        Err(_) => {
            warnings.push(format!(
                "password file \"{}\": the matching line's password is not valid UTF-8",
                path.display()
            ));
            None
        }
    }
}

#[cfg(unix)]
fn insecure(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o077 != 0
}

/// Elsewhere the directory is expected to protect the file, as libpq assumes on Windows.
#[cfg(not(unix))]
fn insecure(_meta: &std::fs::Metadata) -> bool {
    false
}

/// The unescaped password of the first line matching `key`; `None` also when that
/// password is empty (libpq then has no password either).
fn find(contents: &[u8], key: &Key<'_>) -> Option<Vec<u8>> {
    if key.dbname.is_empty() || key.user.is_empty() {
        return None;
    }
    let port = key.port.to_string();
    let password = contents
        .split(|&b| b == b'\n')
        .map(|line| {
            let end = line.iter().rposition(|&b| b != b'\r').map_or(0, |i| i + 1);
            &line[..end]
        })
        .filter(|line| !line.is_empty() && line[0] != b'#')
        .find_map(|line| {
            let rest = key
                .hosts
                .iter()
                .find_map(|host| match_field(line, host.as_bytes()))?;
            let rest = match_field(rest, port.as_bytes())?;
            let rest = match_field(rest, key.dbname.as_bytes())?;
            match_field(rest, key.user.as_bytes())
        })
        .map(unescape)?;
    Some(password).filter(|p| !p.is_empty())
}

/// If the first field of `line` matches `token`, the text after its `:`.
///
/// Mirrors libpq's `pwdfMatchesString`: `*` matches only as a whole field, a backslash
/// makes the next character literal, and a line that ends inside the field matches nothing.
/// (As in libpq, an unescaped `:` in the file may still match a `:` in the token, which
/// lets unescaped IPv6 addresses work.)
fn match_field<'a>(line: &'a [u8], token: &[u8]) -> Option<&'a [u8]> {
    if let Some(rest) = line.strip_prefix(b"*:") {
        return Some(rest);
    }
    let mut matched = 0;
    let mut i = 0;
    while i < line.len() {
        let escaped = line[i] == b'\\';
        if escaped {
            i += 1;
        }
        let c = *line.get(i)?;
        if c == b':' && !escaped && matched == token.len() {
            return Some(&line[i + 1..]);
        }
        if token.get(matched) != Some(&c) {
            return None;
        }
        matched += 1;
        i += 1;
    }
    None
}

/// The password field: up to the next unescaped `:`, backslashes removed.
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut bytes = field.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b':' => break,
            // A backslash at the very end stays, as in libpq.
            b'\\' => out.push(*bytes.next().unwrap_or(&b'\\')),
            b => out.push(b),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key<'a>(hosts: &'a [&'a str], dbname: &'a str) -> Key<'a> {
        Key {
            hosts,
            port: 5432,
            dbname,
            user: "alice",
        }
    }

    fn found(contents: &str, key: &Key<'_>) -> Option<String> {
        find(contents.as_bytes(), key).map(|p| String::from_utf8(p).unwrap())
    }

    #[test]
    fn exact_match_and_first_match_wins() {
        let file = "db1:5432:app:alice:one\ndb1:5432:app:alice:two\n";
        assert_eq!(found(file, &key(&["db1"], "app")).as_deref(), Some("one"));
        assert_eq!(found(file, &key(&["db2"], "app")), None);
        assert_eq!(found(file, &key(&["db1"], "other")), None);
        let k = Key {
            port: 5433,
            ..key(&["db1"], "app")
        };
        assert_eq!(found(file, &k), None);
        let k = Key {
            user: "bob",
            ..key(&["db1"], "app")
        };
        assert_eq!(found(file, &k), None);
        // No prefix matches in either direction.
        assert_eq!(found(file, &key(&["db"], "app")), None);
        assert_eq!(found(file, &key(&["db11"], "app")), None);
    }

    #[test]
    fn wildcards() {
        let k = key(&["db1"], "app");
        for line in [
            "*:5432:app:alice:pw",
            "db1:*:app:alice:pw",
            "db1:5432:*:alice:pw",
            "db1:5432:app:*:pw",
            "*:*:*:*:pw",
        ] {
            assert_eq!(found(line, &k).as_deref(), Some("pw"), "{line}");
        }
        // A star is a wildcard only as a whole field, and not when escaped.
        assert_eq!(found("db*:5432:app:alice:pw", &k), None);
        assert_eq!(found("\\*:5432:app:alice:pw", &k), None);
        assert_eq!(
            found("\\*:5432:app:alice:pw", &key(&["*"], "app")).as_deref(),
            Some("pw")
        );
    }

    #[test]
    fn escapes() {
        let k = key(&["db1"], "a:b\\c");
        assert_eq!(
            found("db1:5432:a\\:b\\\\c:alice:p\\:w\\\\d", &k).as_deref(),
            Some("p:w\\d")
        );
        // The password ends at the next unescaped colon.
        assert_eq!(
            found("db1:5432:app:alice:pw:extra", &key(&["db1"], "app")).as_deref(),
            Some("pw")
        );
        // A trailing backslash in the password is kept.
        assert_eq!(
            found("db1:5432:app:alice:pw\\", &key(&["db1"], "app")).as_deref(),
            Some("pw\\")
        );
        // An escaped character must still match the token.
        assert_eq!(
            found("db\\1:5432:app:alice:pw", &key(&["db1"], "app")).as_deref(),
            Some("pw")
        );
        assert_eq!(
            found("db1\\:5432:app:alice:pw", &key(&["db1"], "app")),
            None
        );
    }

    #[test]
    fn ipv6_host_fields() {
        let k = key(&["::1"], "app");
        assert_eq!(
            found("\\:\\:1:5432:app:alice:pw", &k).as_deref(),
            Some("pw")
        );
        // libpq's quirk: unescaped colons match colons in the host name.
        assert_eq!(found("::1:5432:app:alice:pw", &k).as_deref(), Some("pw"));
    }

    #[test]
    fn comments_blank_lines_crlf_and_short_lines() {
        let file = "# db1:5432:app:alice:commented\n\n\r\n\
                    db1:5432:app:alice\n\
                    db1:5432:app:alice:\n\
                    db1:5432:app:alice:real\r\n";
        // A line without a password field matches nothing; one with an empty password
        // matches, ends the search, and means no password.
        assert_eq!(found(file, &key(&["db1"], "app")), None);
        let file = "# comment\r\n\ndb1:5432:app:alice\ndb1:5432:app:alice:real\r\n";
        assert_eq!(found(file, &key(&["db1"], "app")).as_deref(), Some("real"));
        // Only a '#' in the first column starts a comment.
        assert_eq!(
            found(" #:5432:app:alice:pw", &key(&[" #"], "app")).as_deref(),
            Some("pw")
        );
        // No trailing newline.
        assert_eq!(
            found("*:*:*:*:last", &key(&["h"], "d")).as_deref(),
            Some("last")
        );
    }

    #[test]
    fn replication_and_socket_host_names() {
        let file = "localhost:5432:replication:alice:repl\n\
                    /srv/sock:5432:app:alice:sock\n\
                    localhost:5432:app:alice:local\n";
        let socket = ["/var/run/postgresql", "localhost"];
        assert_eq!(
            found(file, &key(&socket, "replication")).as_deref(),
            Some("repl")
        );
        assert_eq!(found(file, &key(&socket, "app")).as_deref(), Some("local"));
        assert_eq!(
            found(file, &key(&["/srv/sock"], "app")).as_deref(),
            Some("sock")
        );
        assert_eq!(found(file, &key(&["/srv/sock"], "replication")), None);
    }

    #[test]
    fn empty_user_or_dbname_never_matches() {
        assert_eq!(found("*:*:*:*:pw", &key(&["h"], "")), None);
        let k = Key {
            user: "",
            ..key(&["h"], "d")
        };
        assert_eq!(found("*:*:*:*:pw", &k), None);
    }

    /// A file holding `contents` with `mode`; removed on drop.
    fn file_with(contents: &[u8], mode: u32) -> tempfile::NamedTempFile {
        use std::os::unix::fs::PermissionsExt;
        let file = tempfile::Builder::new()
            .prefix("pgwire-repl-pgpass-")
            .tempfile()
            .unwrap();
        std::fs::write(file.path(), contents).unwrap();
        std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        file
    }

    #[test]
    fn file_permissions() {
        let k = key(&["h"], "d");
        for mode in [0o600, 0o400, 0o700] {
            let file = file_with(b"h:5432:d:alice:secret\n", mode);
            let mut warnings = Vec::new();
            assert_eq!(
                lookup(file.path(), &k, &mut warnings).as_deref(),
                Some("secret")
            );
            assert!(warnings.is_empty(), "{mode:o}: {warnings:?}");
        }
        for mode in [0o640, 0o604, 0o620, 0o602, 0o610, 0o601, 0o644, 0o666] {
            let file = file_with(b"h:5432:d:alice:secret\n", mode);
            let mut warnings = Vec::new();
            assert_eq!(lookup(file.path(), &k, &mut warnings), None, "{mode:o}");
            assert_eq!(
                warnings,
                [format!(
                    "password file \"{}\" has group or world access; permissions should be u=rw (0600) or less",
                    file.path().display()
                )]
            );
            assert!(!warnings[0].contains("secret"));
        }
    }

    #[test]
    fn missing_file_and_directory() {
        let k = key(&["h"], "d");
        let mut warnings = Vec::new();
        let dir = tempfile::Builder::new()
            .prefix("pgwire-repl-pgpass-")
            .tempdir()
            .unwrap();
        let dir = dir.path();
        assert_eq!(lookup(&dir.join("missing"), &k, &mut warnings), None);
        assert!(warnings.is_empty());
        assert_eq!(lookup(dir, &k, &mut warnings), None);
        assert_eq!(
            warnings,
            [format!(
                "password file \"{}\" is not a plain file",
                dir.display()
            )]
        );
    }

    #[test]
    fn non_utf8_password_is_a_warning() {
        let file = file_with(b"h:5432:d:alice:\xff\xfe\n", 0o600);
        let mut warnings = Vec::new();
        assert_eq!(lookup(file.path(), &key(&["h"], "d"), &mut warnings), None);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].ends_with("the matching line's password is not valid UTF-8"));
    }
}
