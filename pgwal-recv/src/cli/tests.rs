use super::*;

mod basebackup;
mod cleanup;
mod subcommands;

const HINT: &str = "pgwal-recv: hint: Try \"pgwal-recv --help\" for more information.";

fn args(line: &[&str]) -> Vec<String> {
    line.iter().map(|s| (*s).to_owned()).collect()
}

/// A directory that exists, for the commands that must get past the directory check.
fn tmp() -> String {
    std::env::temp_dir().to_string_lossy().into_owned()
}

fn run(line: &[&str]) -> Options {
    match parse(&args(line)) {
        Ok(Action::Run(o)) => o,
        other => panic!("{line:?}: {other:?}"),
    }
}

/// Runs `line` with `-D <tmp>` in front.
fn run_d(line: &[&str]) -> Options {
    let d = tmp();
    let mut all = vec!["-D", &d];
    all.extend_from_slice(line);
    run(&all)
}

fn err(line: &[&str]) -> Vec<String> {
    match parse(&args(line)) {
        Err(e) => e.lines(),
        other => panic!("{line:?}: {other:?}"),
    }
}

fn err_d(line: &[&str]) -> Vec<String> {
    let d = tmp();
    let mut all = vec!["-D", &d];
    all.extend_from_slice(line);
    err(&all)
}

/// A getopt complaint: untagged, then the hint.
fn getopt(msg: &str) -> Vec<String> {
    vec![format!("pgwal-recv: {msg}"), HINT.to_owned()]
}

fn usage(msg: &str) -> Vec<String> {
    vec![format!("pgwal-recv: error: {msg}"), HINT.to_owned()]
}

fn fatal(msg: &str) -> Vec<String> {
    vec![format!("pgwal-recv: error: {msg}")]
}

#[test]
fn defaults() {
    let o = run_d(&[]);
    assert_eq!(
        o,
        Options {
            directory: Some(PathBuf::from(tmp())),
            ..Options::default()
        }
    );
    assert_eq!(o.status_interval, Some(Duration::from_secs(10)));
    assert_eq!(o.compress, CompressSpec::default());
}

#[test]
fn help_and_version_only_as_first_argument() {
    for a in ["--help", "-?"] {
        assert_eq!(parse(&args(&[a])), Ok(Action::Help));
        assert_eq!(parse(&args(&[a, "--bogus", "x"])), Ok(Action::Help));
    }
    for a in ["--version", "-V"] {
        assert_eq!(parse(&args(&[a])), Ok(Action::Version));
        assert_eq!(parse(&args(&[a, "-x"])), Ok(Action::Version));
    }
    // getopt knows --help and --version, pg_receivewal's switch does not: only the hint.
    for a in ["--help", "--version", "--hel", "--vers"] {
        assert_eq!(err_d(&[a]), vec![HINT.to_owned()]);
    }
    assert_eq!(err(&["--hel"]), vec![HINT.to_owned()]);
    assert_eq!(err_d(&["-?"]), getopt("invalid option -- '?'"));
    assert_eq!(err_d(&["-V"]), getopt("invalid option -- 'V'"));
    assert_eq!(
        err_d(&["--help=1"]),
        getopt("option '--help' doesn't allow an argument")
    );
}

#[test]
fn value_forms() {
    let d = tmp();
    let want = Some(PathBuf::from(&d));
    assert_eq!(run(&["-D", &d]).directory, want);
    assert_eq!(run(&[&format!("-D{d}")]).directory, want);
    assert_eq!(run(&["--directory", &d]).directory, want);
    assert_eq!(run(&[&format!("--directory={d}")]).directory, want);
    assert_eq!(run(&[&format!("--direc={d}")]).directory, want);
    let o = run(&["--db", "x", "--di", &d]);
    assert_eq!(
        (o.dbname.as_deref(), o.directory),
        (Some("x"), want.clone())
    );
    assert_eq!(
        err(&["--d", "x"]),
        getopt(
            "option '--d' is ambiguous; possibilities: '--directory' '--dbname' \
             '--drop-slot'"
        )
    );
    // A value is taken whatever it looks like.
    assert_eq!(run_d(&["-S", "-v"]).slot.as_deref(), Some("-v"));
    assert_eq!(run_d(&["--slot", "--"]).slot.as_deref(), Some("--"));
    assert_eq!(run_d(&["--slot="]).slot.as_deref(), Some(""));
    assert_eq!(run_d(&["--slot=a=b"]).slot.as_deref(), Some("a=b"));
    // The last one wins.
    assert_eq!(run_d(&["-S", "a", "--slot=b"]).slot.as_deref(), Some("b"));
}

#[test]
fn every_option() {
    let o = run_d(&[
        "-E",
        "1/2",
        "--if-not-exists",
        "-n",
        "-s",
        "3",
        "-S",
        "s1",
        "-v",
        "-Z",
        "lz4:5",
        "-d",
        "port=1",
        "-h",
        "/run",
        "-p",
        "5433",
        "-U",
        "u",
    ]);
    assert_eq!(o.endpos, Some(Lsn::from(0x1_0000_0002)));
    assert!(o.if_not_exists && o.no_loop && o.verbose);
    assert_eq!(o.status_interval, Some(Duration::from_secs(3)));
    assert_eq!(o.slot.as_deref(), Some("s1"));
    assert_eq!(o.compress, CompressSpec::parse("lz4:5").unwrap());
    assert_eq!(o.dbname.as_deref(), Some("port=1"));
    assert_eq!(o.host.as_deref(), Some("/run"));
    assert_eq!(o.port.as_deref(), Some("5433"));
    assert_eq!(o.username.as_deref(), Some("u"));
    assert!(!o.no_sync && !o.synchronous && !o.create_slot && !o.drop_slot);

    let o = run_d(&[
        "--endpos=A/B",
        "--no-loop",
        "--no-sync",
        "--status-interval=0",
        "--slot=s",
        "--verbose",
        "--compress=gzip",
        "--dbname=x",
        "--host=h",
        "--port=p",
        "--username=u",
        "--no-password",
    ]);
    assert_eq!(o.endpos, Some(Lsn::from(0xA_0000_000B)));
    assert!(o.no_loop && o.no_sync && o.verbose && o.no_password && !o.password_prompt);
    assert_eq!(o.status_interval, None);
    assert_eq!(o.compress, CompressSpec::parse("gzip").unwrap());
    assert_eq!(
        (o.dbname, o.host, o.port, o.username),
        (
            Some("x".into()),
            Some("h".into()),
            Some("p".into()),
            Some("u".into())
        )
    );
    assert!(run_d(&["--synchronous"]).synchronous);
    assert!(run_d(&["--password"]).password_prompt);
    assert!(run_d(&["-W"]).password_prompt);
    let o = run(&["--create-slot", "--slot", "s"]);
    assert!(o.create_slot && o.directory.is_none());
    let o = run(&["--drop-slot", "-S", "s"]);
    assert!(o.drop_slot && !o.create_slot);
}

#[test]
fn short_options_cluster() {
    let o = run_d(&["-vnw"]);
    assert!(o.verbose && o.no_loop && o.no_password);
    // The first option that takes a value takes the rest of the cluster.
    let o = run_d(&["-vnSslot"]);
    assert!(o.verbose && o.no_loop);
    assert_eq!(o.slot.as_deref(), Some("slot"));
    let o = run_d(&["-vS", "next"]);
    assert_eq!(o.slot.as_deref(), Some("next"));
    assert_eq!(run_d(&["-Svn"]).slot.as_deref(), Some("vn"));
    assert!(!run_d(&["-Svn"]).verbose);
    assert_eq!(err_d(&["-vx"]), getopt("invalid option -- 'x'"));
    assert_eq!(
        err_d(&["-vnZ"]),
        getopt("option requires an argument -- 'Z'")
    );
}

#[test]
fn password_switches_last_one_wins() {
    let o = run_d(&["-w", "-W"]);
    assert!(o.password_prompt && !o.no_password);
    let o = run_d(&["-W", "--no-password"]);
    assert!(!o.password_prompt && o.no_password);
}

#[test]
fn getopt_complaints() {
    assert_eq!(err(&["--foo"]), getopt("unrecognized option '--foo'"));
    assert_eq!(
        err(&["--foo=bar"]),
        getopt("unrecognized option '--foo=bar'")
    );
    assert_eq!(err(&["-x"]), getopt("invalid option -- 'x'"));
    assert_eq!(err(&["-D"]), getopt("option requires an argument -- 'D'"));
    assert_eq!(
        err(&["--directory"]),
        getopt("option '--directory' requires an argument")
    );
    assert_eq!(
        err(&["--direc"]),
        getopt("option '--directory' requires an argument")
    );
    assert_eq!(err_d(&["-s"]), getopt("option requires an argument -- 's'"));
    assert_eq!(
        err_d(&["--slot"]),
        getopt("option '--slot' requires an argument")
    );
    assert_eq!(
        err(&["--compress"]),
        getopt("option '--compress' requires an argument")
    );
    assert_eq!(
        err(&["--no-loop=1"]),
        getopt("option '--no-loop' doesn't allow an argument")
    );
    assert_eq!(
        err(&["--no-l=1"]),
        getopt("option '--no-loop' doesn't allow an argument")
    );
    // pg_receivewal's three, and ours.
    let no = "is ambiguous; possibilities: '--no-loop' '--no-password' '--no-sync' '--no-verify'";
    assert_eq!(err(&["--no"]), getopt(&format!("option '--no' {no}")));
    assert_eq!(err(&["--n"]), getopt(&format!("option '--n' {no}")));
    assert_eq!(err(&["--no=1"]), getopt(&format!("option '--no=1' {no}")));
    // pg_receivewal's three, and ours.
    assert_eq!(
        err(&["--s"]),
        getopt(
            "option '--s' is ambiguous; possibilities: '--status-interval' '--slot' \
             '--synchronous' '--spool' '--spool-max'"
        )
    );
    // An exact name is never ambiguous; a unique prefix is accepted.
    assert!(run_d(&["--no-sync"]).no_sync);
    assert!(run_d(&["--no-s"]).no_sync);
    assert!(run_d(&["--syn"]).synchronous);
    // Option errors come in argument order, before any other check.
    assert_eq!(
        err(&["a", "--foo", "-s", "x"]),
        getopt("unrecognized option '--foo'")
    );
}

#[test]
fn operands() {
    let too_many = |first: &str| {
        usage(&format!(
            "too many command-line arguments (first is \"{first}\")"
        ))
    };
    assert_eq!(err_d(&["a"]), too_many("a"));
    // glibc permutes: options after an operand still count, the first operand is named.
    assert_eq!(err(&["a", "-D", &tmp(), "b"]), too_many("a"));
    assert_eq!(err(&["a", "--create-slot", "--drop-slot"]), too_many("a"));
    assert_eq!(err_d(&["-"]), too_many("-"));
    assert_eq!(err_d(&["--", "-v"]), too_many("-v"));
    assert_eq!(err(&["--", "-D"]), too_many("-D"));
    assert_eq!(err(&["--"]), usage("no target directory specified"));
    assert_eq!(run_d(&["--"]).directory, Some(PathBuf::from(tmp())));
}

#[test]
fn endpos() {
    assert_eq!(
        run_d(&["-E", "0/3000060"]).endpos,
        Some(Lsn::from(0x300_0060))
    );
    assert_eq!(
        run_d(&["-E", "FFFFFFFF/ffffffff"]).endpos,
        Some(Lsn::from(u64::MAX))
    );
    // 0/0 is InvalidXLogRecPtr, which pg_receivewal reads as "no end position".
    assert_eq!(run_d(&["-E", "0/0"]).endpos, None);
    for bad in [
        "zz",
        "",
        "1",
        "1/",
        "/1",
        "1/2zz",
        "100000000/0",
        "1 /2",
        "0x1/0x2",
    ] {
        assert_eq!(
            err_d(&["-E", bad]),
            fatal(&format!("could not parse end position \"{bad}\"")),
            "{bad:?}"
        );
    }
    // Checked while parsing options: before the operand check.
    assert_eq!(
        err(&["x", "-E", "zz"]),
        fatal("could not parse end position \"zz\"")
    );
}

#[test]
fn status_interval() {
    let secs = |v: &str| run_d(&["-s", v]).status_interval;
    assert_eq!(secs("1"), Some(Duration::from_secs(1)));
    assert_eq!(secs("2147483"), Some(Duration::from_secs(2_147_483)));
    assert_eq!(secs("0"), None);
    assert_eq!(secs("-0"), None);
    // strtol semantics: blanks around, a sign, and no digits at all reading as 0.
    assert_eq!(secs(" +5 "), Some(Duration::from_secs(5)));
    assert_eq!(secs("\t7\n"), Some(Duration::from_secs(7)));
    assert_eq!(secs(""), None);
    assert_eq!(secs("  "), None);
    assert_eq!(secs("007"), Some(Duration::from_secs(7)));
    let range = fatal("-s/--status-interval must be in range 0..2147483");
    for v in [
        "-1",
        "2147484",
        "99999999999999999999999",
        "-99999999999999999999",
    ] {
        assert_eq!(err_d(&["-s", v]), range, "{v:?}");
    }
    for v in ["abc", "5x", "0x10", "1.5", "+", "-", "5 5", "+ 5"] {
        assert_eq!(
            err_d(&["-s", v]),
            fatal(&format!(
                "invalid value \"{v}\" for option -s/--status-interval"
            )),
            "{v:?}"
        );
    }
    assert_eq!(err(&["--status-interval=-1", "x"]), range);
}

#[test]
fn checks_after_parsing_in_order() {
    let both = usage("cannot use --create-slot together with --drop-slot");
    assert_eq!(err(&["--create-slot", "--drop-slot"]), both);
    assert_eq!(err(&["--drop-slot", "--create-slot", "-S", "s"]), both);
    assert_eq!(
        err(&["--create-slot"]),
        usage("--create-slot needs a slot to be specified using --slot")
    );
    assert_eq!(
        err(&["--drop-slot", "-Z", "bogus"]),
        usage("--drop-slot needs a slot to be specified using --slot")
    );
    let sync = usage("cannot use --synchronous together with --no-sync");
    assert_eq!(err(&["--synchronous", "--no-sync"]), sync);
    assert_eq!(err(&["--syn", "--no-s", "-D", "/nonexistent"]), sync);
    assert_eq!(err(&["-v"]), usage("no target directory specified"));
    assert_eq!(
        err(&["-Z", "bogus"]),
        usage("no target directory specified")
    );
}

#[test]
fn compression() {
    assert_eq!(
        err_d(&["-Z", "bogus"]),
        fatal("unrecognized compression algorithm: \"bogus\"")
    );
    assert_eq!(
        err_d(&["--compress=gzip:20"]),
        fatal(
            "invalid compression specification: compression algorithm \"gzip\" expects a \
             compression level between 1 and 9 (default at -1)"
        )
    );
    // Validated even when only a slot is created (and then unused), as pg_receivewal does.
    assert_eq!(
        err(&["--create-slot", "-S", "s", "-Z", "bogus"]),
        fatal("unrecognized compression algorithm: \"bogus\"")
    );
    // Only the last -Z counts; it is checked before the directory.
    assert_eq!(
        run_d(&["-Z", "bogus", "-Z", "zstd:3"]).compress,
        CompressSpec::parse("zstd:3").unwrap()
    );
    assert_eq!(
        err(&["-D", "/nonexistent/pgwal-recv", "-Z", "bogus"]),
        fatal("unrecognized compression algorithm: \"bogus\"")
    );
    assert_eq!(
        run_d(&["-Z", "5"]).compress,
        CompressSpec::parse("gzip:5").unwrap()
    );
    assert_eq!(run_d(&["-Z", "0"]).compress, CompressSpec::default());
}

#[test]
fn directory_must_exist() {
    let missing = std::env::temp_dir().join(format!("pgwal-recv-missing-{}", std::process::id()));
    let missing = missing.to_string_lossy().into_owned();
    assert_eq!(
        err(&["-D", &missing]),
        fatal(&format!(
            "could not open directory \"{missing}\": No such file or directory"
        ))
    );
    assert_eq!(
        err(&["-D", ""]),
        fatal("could not open directory \"\": No such file or directory")
    );
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    assert_eq!(
        err(&["-D", file]),
        fatal(&format!(
            "could not open directory \"{file}\": Not a directory"
        ))
    );
    // Slot commands do not stream, so pg_receivewal does not open -D for them.
    let o = run(&["--create-slot", "-S", "s", "-D", &missing]);
    assert_eq!(o.directory, Some(PathBuf::from(&missing)));
    assert!(run(&["--drop-slot", "-S", "s", "-D", file]).drop_slot);
}

#[test]
fn error_lines() {
    let e = CliError {
        message: "m".into(),
        tagged: true,
        hint: false,
    };
    assert_eq!(e.lines(), ["pgwal-recv: error: m"]);
    let e = CliError {
        message: "m".into(),
        tagged: false,
        hint: true,
    };
    assert_eq!(e.lines(), ["pgwal-recv: m", HINT]);
}

#[test]
fn help_and_version_text() {
    let help = help_text();
    assert!(help.starts_with("pgwal-recv receives PostgreSQL streaming write-ahead logs.\n"));
    assert!(help.ends_with('\n') && !help.ends_with("\n\n"));
    assert!(help.contains("none, gzip, lz4 or zstd"));
    assert!(!help.contains("pg_receivewal"));
    for line in help.lines() {
        assert!(line.len() < 95, "{line:?}");
    }
    for (name, _, _) in LONG {
        assert!(help.contains(&format!("--{name}")), "{name}");
    }
    for c in "dDEhnpsSUvwWZ".chars() {
        assert!(help.contains(&format!("  -{c}, --")), "{c}");
    }
    assert_eq!(
        version_text(),
        format!("pgwal-recv (pgwire-repl) {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn object_store_options() {
    let d = tmp();
    let o = run(&["-D", "s3://bucket/prefix", "--spool", &d]);
    assert_eq!(o.directory, Some(PathBuf::from("s3://bucket/prefix")));
    assert_eq!(o.spool, Some(PathBuf::from(&d)));
    assert_eq!(
        (o.spool_max, o.upload_jobs, o.upload_partial),
        (DEFAULT_SPOOL_MAX, DEFAULT_UPLOAD_JOBS, None)
    );
    let o = run(&[
        "-D",
        "s3://b/p",
        "--spool",
        &d,
        "--spool-max",
        "9",
        "--upload-jobs=3",
        "--upload-partial",
        "15",
    ]);
    assert_eq!(
        (o.spool_max, o.upload_jobs, o.upload_partial),
        (9, 3, Some(Duration::from_secs(15)))
    );
    assert_eq!(
        err(&["-D", "s3://b/p"]),
        usage("an object store (-D URL) is archived to through a local spool: --spool is required")
    );
    assert_eq!(
        err_d(&["--spool", &d]),
        usage("--spool is only for an object store (-D s3://BUCKET/PREFIX)")
    );
    // The spool is opened as -D would be.
    assert_eq!(
        err(&["-D", "s3://b/p", "--spool", "/nonexistent/spool"]),
        fatal("could not open directory \"/nonexistent/spool\": No such file or directory")
    );
    assert_eq!(
        err(&["-D", "s3://b/p", "--spool", &d, "--spool-max", "0"]),
        fatal("--spool-max must be in range 1..100000")
    );
    assert_eq!(
        err(&["-D", "s3://b/p", "--spool", &d, "--upload-jobs", "x"]),
        fatal("invalid value \"x\" for option --upload-jobs")
    );
    // Slot commands need neither.
    let o = run(&["-D", "s3://b/p", "-S", "s", "--create-slot"]);
    assert!(o.create_slot);
}
