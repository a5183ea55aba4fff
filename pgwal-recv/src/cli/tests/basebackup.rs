//! basebackup: pg_basebackup's options and refusals.

use super::*;

fn basebackup(line: &[&str]) -> BasebackupOptions {
    let mut all = vec!["basebackup"];
    all.extend_from_slice(line);
    match parse(&args(&all)) {
        Ok(Action::Basebackup(o)) => o,
        other => panic!("{line:?}: {other:?}"),
    }
}

fn basebackup_err(line: &[&str]) -> Vec<String> {
    let mut all = vec!["basebackup"];
    all.extend_from_slice(line);
    err(&all)
}

#[test]
fn basebackup_options() {
    let o = basebackup(&["-D", "/b"]);
    assert_eq!(o.directory, PathBuf::from("/b"));
    assert_eq!((o.format, o.wal_method), (Format::Plain, WalMethod::Stream));
    assert_eq!(o.label, "pg_basebackup base backup");
    assert!(!o.fast_checkpoint && !o.write_recovery_conf && !o.no_sync);

    let o = basebackup(&[
        "--pgdata=/b",
        "-Ft",
        "-Xf",
        "-c",
        "fast",
        "-r",
        "1M",
        "-l",
        "x y",
        "-P",
        "-v",
        "-N",
        "-n",
        "-z",
        "--no-verify-checksums",
        "--manifest-checksums",
        "SHA256",
        "--manifest-force-encode",
    ]);
    assert_eq!((o.format, o.wal_method), (Format::Tar, WalMethod::Fetch));
    assert!(o.fast_checkpoint && o.progress && o.verbose && o.no_sync && o.no_clean);
    assert_eq!(o.max_rate, Some(1024));
    assert_eq!(o.label, "x y");
    assert_eq!(o.compress.method, crate::archive::compress::Method::Gzip);
    assert_eq!(o.compress_at, CompressAt::Client);
    assert_eq!(o.manifest_checksums.as_deref(), Some("SHA256"));
    assert!(o.no_verify_checksums && o.manifest_force_encode);

    let o = basebackup(&["-D/b", "-Ft", "-Z", "server-zstd:5", "-R", "-C", "-S", "s1"]);
    assert_eq!(o.compress_at, CompressAt::Server);
    assert_eq!(o.compress.method, crate::archive::compress::Method::Zstd);
    assert_eq!(o.compress.level, Some(5));
    assert!(o.write_recovery_conf && o.create_slot);
    assert_eq!(o.slot.as_deref(), Some("s1"));

    let o = basebackup(&[
        "-D",
        "/b",
        "-T",
        "/old\\=x=/new",
        "-T/a=/b",
        "--waldir",
        "/w",
    ]);
    assert_eq!(
        o.tablespace_mapping,
        vec![
            (PathBuf::from("/old=x"), PathBuf::from("/new")),
            (PathBuf::from("/a"), PathBuf::from("/b"))
        ]
    );
    assert_eq!(o.waldir, Some(PathBuf::from("/w")));
    assert_eq!(basebackup(&["-D/b", "-r", "32"]).max_rate, Some(32));
    assert_eq!(basebackup(&["-D/b", "-r", "64k"]).max_rate, Some(64));
}

#[test]
fn basebackup_usage_errors() {
    assert_eq!(basebackup_err(&[]), usage("no target directory specified"));
    assert_eq!(
        basebackup_err(&["-D/b", "-F", "x"]),
        fatal("invalid output format \"x\", must be \"plain\" or \"tar\"")
    );
    assert_eq!(
        basebackup_err(&["-D/b", "-X", "x"]),
        fatal("invalid wal-method option \"x\", must be \"fetch\", \"stream\", or \"none\"")
    );
    assert_eq!(
        basebackup_err(&["-D/b", "-c", "slow"]),
        fatal("invalid checkpoint argument \"slow\", must be \"fast\" or \"spread\"")
    );
    assert_eq!(
        basebackup_err(&["-D/b", "-Z", "gzip"]),
        usage("only tar mode backups can be compressed")
    );
    assert_eq!(
        basebackup_err(&["-D/b", "-Z", "server-lz4"]),
        usage(
            "server-side lz4 with the plain format is not supported: use gzip or zstd, or -F tar"
        )
    );
    assert!(matches!(
        parse(&args(&["basebackup", "-D/b", "-Z", "server-gzip"])),
        Ok(Action::Basebackup(_))
    ));
    assert_eq!(
        basebackup_err(&["-D/b", "-X", "fetch", "-S", "s"]),
        usage("replication slots can only be used with WAL streaming")
    );
    assert_eq!(
        basebackup_err(&["-D/b", "-C"]),
        usage("--create-slot needs a slot to be specified using --slot")
    );
    assert_eq!(
        basebackup_err(&["-D/b", "--no-slot", "-S", "s"]),
        usage("--no-slot cannot be used with slot name")
    );
    assert_eq!(
        basebackup_err(&["-D/b", "-Ft", "--waldir", "/w"]),
        usage("WAL directory location can only be specified in plain mode")
    );
    assert_eq!(
        basebackup_err(&["-D/b", "--waldir", "w"]),
        usage("WAL directory location must be an absolute path")
    );
    assert_eq!(
        basebackup_err(&["-D/b", "--no-manifest", "--manifest-checksums", "NONE"]),
        usage("--no-manifest and --manifest-checksums are incompatible options")
    );
    assert_eq!(
        basebackup_err(&["-D/b", "-T", "old=/new"]),
        fatal("old directory is not an absolute path in tablespace mapping: old")
    );
    assert_eq!(
        basebackup_err(&["-D/b", "-T", "/a=/b=/c"]),
        fatal("multiple \"=\" signs in tablespace mapping")
    );
    assert_eq!(
        basebackup_err(&["-D/b", "-T", "/a"]),
        fatal("invalid tablespace mapping format \"/a\", must be \"OLDDIR=NEWDIR\"")
    );
    assert_eq!(
        basebackup_err(&["-D/b", "-r", "0"]),
        fatal("transfer rate must be greater than zero")
    );
    assert_eq!(
        basebackup_err(&["-D/b", "-r", "31"]),
        fatal("transfer rate \"31\" is out of range")
    );
    assert_eq!(
        basebackup_err(&["-D/b", "-r", "fast"]),
        fatal("transfer rate \"fast\" is not a valid value")
    );
    assert_eq!(
        basebackup_err(&["-D/b", "x"]),
        usage("too many command-line arguments (first is \"x\")")
    );
    assert!(matches!(
        parse(&args(&["basebackup", "--help"])),
        Ok(Action::SubHelp(t)) if t.contains("-X, --wal-method=none|fetch|stream")
    ));
}
