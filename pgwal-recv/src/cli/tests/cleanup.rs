//! cleanup: what to keep, and its usage errors.

use super::*;

fn cleanup(line: &[&str]) -> CleanupOptions {
    let mut all = vec!["cleanup"];
    all.extend_from_slice(line);
    match parse(&args(&all)) {
        Ok(Action::Cleanup(o)) => o,
        other => panic!("{line:?}: {other:?}"),
    }
}

fn keep_from(v: &str) -> Keep {
    cleanup(&["-D", "/a", "--keep-from", v]).keep
}

#[test]
fn cleanup_options() {
    assert_eq!(
        cleanup(&[
            "-D",
            "/a",
            "--keep-from=000000010000000000000003",
            "-n",
            "--json"
        ]),
        CleanupOptions {
            directory: "/a".into(),
            keep: Keep::From(KeepFrom::Segment("000000010000000000000003".into())),
            dry_run: true,
            json: true,
        }
    );
    let o = cleanup(&["--directory=/a", "--keep-within", "36h", "--dry-run"]);
    assert_eq!(o.keep, Keep::Within(Duration::from_secs(36 * 3600)));
    assert!(o.dry_run && !o.json);
    // Abbreviated, as getopt_long allows.
    assert_eq!(
        cleanup(&["-D/a", "--keep-w=1w"]).keep,
        Keep::Within(Duration::from_secs(7 * 86_400))
    );
}

#[test]
fn cleanup_keep_from_forms() {
    // A segment name with any segment suffix: its 24 digits.
    for v in [
        "00000002000000010000000A",
        "00000002000000010000000A.partial",
        "00000002000000010000000A.zst",
        "00000002000000010000000A.gz.partial",
    ] {
        assert_eq!(
            keep_from(v),
            Keep::From(KeepFrom::Segment("00000002000000010000000A".into())),
            "{v}"
        );
    }
    assert_eq!(
        keep_from("1/A000028"),
        Keep::From(KeepFrom::Lsn(Lsn(0x1_0A00_0028)))
    );
    // Anything else is a file: a .backup file's name, a path.
    for v in [
        "000000010000000000000003.00000028.backup",
        "/backups/base/backup_label",
        "backup_label",
        "000000010000000000000003.tmp",
    ] {
        assert_eq!(keep_from(v), Keep::From(KeepFrom::File(v.into())), "{v}");
    }
    assert_eq!(
        err(&[
            "cleanup",
            "-D",
            "/a",
            "--keep-from",
            "00000001000000000000000a"
        ]),
        fatal(
            "invalid segment name \"00000001000000000000000a\" for option --keep-from: 24 \
             uppercase hex digits expected"
        )
    );
    assert_eq!(
        err(&["cleanup", "-D", "/a", "--keep-from="]),
        fatal("invalid value \"\" for option --keep-from")
    );
}

#[test]
fn cleanup_keep_within_durations() {
    for (v, secs) in [
        ("3600s", 3600),
        ("90m", 5400),
        ("36h", 129_600),
        ("7d", 604_800),
        ("2w", 1_209_600),
    ] {
        assert_eq!(
            cleanup(&["-D", "/a", "--keep-within", v]).keep,
            Keep::Within(Duration::from_secs(secs)),
            "{v}"
        );
    }
    for v in [
        "7",
        "0d",
        "d",
        "-1d",
        "+1d",
        " 1d",
        "1 d",
        "1D",
        "1.5h",
        "1y",
        "",
        "99999999999999999999d",
        "30500000000000000w",
    ] {
        assert_eq!(
            err(&["cleanup", "-D", "/a", "--keep-within", v]),
            fatal(&format!(
                "invalid value \"{v}\" for option --keep-within: a number and a unit (s, m, h, \
                 d, w) expected, as in 36h or 7d"
            )),
            "{v}"
        );
    }
}

#[test]
fn cleanup_usage_errors() {
    assert_eq!(
        err(&["cleanup", "--keep-within", "1d"]),
        usage("no archive specified (-D)")
    );
    assert_eq!(
        err(&["cleanup", "-D", "/a"]),
        usage("what to keep must be specified using --keep-from or --keep-within")
    );
    assert_eq!(
        err(&[
            "cleanup",
            "-D",
            "/a",
            "--keep-within",
            "1d",
            "--keep-from",
            "0/0"
        ]),
        usage("cannot use --keep-from together with --keep-within")
    );
    assert_eq!(
        err(&["cleanup", "-D", "/a", "--keep-within", "1d", "x"]),
        usage("too many command-line arguments (first is \"x\")")
    );
    assert_eq!(
        err(&["cleanup", "-D", "/a", "--keep"]),
        getopt("option '--keep' is ambiguous; possibilities: '--keep-from' '--keep-within'")
    );
    assert_eq!(
        err(&["cleanup", "-D", "/a", "-S", "x"]),
        getopt("invalid option -- 'S'")
    );
    assert!(matches!(
        parse(&args(&["cleanup", "--help"])),
        Ok(Action::SubHelp(t)) if t.contains("cleanup removes from a write-ahead log archive")
    ));
    assert!(matches!(
        parse(&args(&["cleanup", "-?"])),
        Ok(Action::SubHelp(_))
    ));
}
