//! measure, status, verify and restore: their options and errors.

use super::*;

fn measure(line: &[&str]) -> MeasureOptions {
    match parse(&args(line)) {
        Ok(Action::Measure(o)) => o,
        other => panic!("{line:?}: {other:?}"),
    }
}

#[test]
fn measure_options() {
    let o = measure(&["measure"]);
    assert_eq!(o.status_interval, Some(Duration::from_secs(10)));
    assert_eq!(
        (o.slot, o.endpos, o.duration, o.json),
        (None, None, None, false)
    );
    let o = measure(&[
        "measure",
        "-S",
        "s",
        "-E",
        "1/2",
        "--duration=5",
        "--json",
        "-s",
        "0",
        "-d",
        "port=1",
        "-Uu",
        "-w",
        "--metrics-listen",
        "127.0.0.1:9187",
    ]);
    assert_eq!(o.slot.as_deref(), Some("s"));
    assert_eq!(o.endpos, Some("1/2".parse().unwrap()));
    assert_eq!(o.duration, Some(Duration::from_secs(5)));
    assert_eq!(o.status_interval, None);
    assert!(o.json && o.conn.no_password);
    assert_eq!(o.conn.dbname.as_deref(), Some("port=1"));
    assert_eq!(o.conn.username.as_deref(), Some("u"));
    assert_eq!(o.metrics_listen, Some("127.0.0.1:9187".parse().unwrap()));
    assert!(matches!(
        parse(&args(&["measure", "--help"])),
        Ok(Action::SubHelp(_))
    ));
    assert!(matches!(
        parse(&args(&["status", "-?"])),
        Ok(Action::SubHelp(_))
    ));
}

#[test]
fn subcommand_errors() {
    assert_eq!(
        err(&["measure", "--duration", "0"]),
        fatal("invalid value \"0\" for option --duration: expected a number of seconds")
    );
    assert_eq!(
        err(&["measure", "--metrics-listen", "nowhere"]),
        fatal("invalid value \"nowhere\" for option --metrics-listen: expected HOST:PORT")
    );
    assert_eq!(
        err(&["measure", "-D", "x"]),
        getopt("invalid option -- 'D'")
    );
    assert_eq!(err(&["status", "-S", "x"]), getopt("invalid option -- 'S'"));
    assert_eq!(
        err(&["status", "extra"]),
        usage("too many command-line arguments (first is \"extra\")")
    );
    assert_eq!(
        err(&["measure", "-E", "zz"]),
        fatal("could not parse end position \"zz\"")
    );
    // The archiver's own option, validated there too.
    assert_eq!(
        err_d(&["--metrics-listen", "1.2.3.4"]),
        fatal("invalid value \"1.2.3.4\" for option --metrics-listen: expected HOST:PORT")
    );
    assert_eq!(
        run_d(&["--metrics-listen", "127.0.0.1:0"]).metrics_listen,
        Some("127.0.0.1:0".parse().unwrap())
    );
}

#[test]
fn subcommand_help_lines_fit() {
    for text in [
        help_text(),
        measure_help_text(),
        status_help_text(),
        verify_help_text(),
        cleanup_help_text(),
    ] {
        for l in text.lines() {
            assert!(l.chars().count() < 95, "{l}");
        }
    }
}

#[test]
fn verify_options() {
    let parsed = parse(&args(&[
        "verify",
        "-D",
        "/a",
        "--timeline=2",
        "--start",
        "000000010000000000000003.partial",
        "--end=00000001000000000000000A",
        "--stats",
        "--json",
    ]));
    assert_eq!(
        parsed.unwrap(),
        Action::Verify(VerifyOptions {
            directory: "/a".into(),
            timeline: Some(TimelineId(2)),
            start: Some("000000010000000000000003".into()),
            end: Some("00000001000000000000000A".into()),
            stats: true,
            json: true,
        })
    );
    assert_eq!(err(&["verify"]), usage("no archive specified (-D)"));
    assert_eq!(
        err(&["verify", "-D", "/a", "--timeline", "0"]),
        fatal("invalid timeline \"0\" for option --timeline")
    );
    assert_eq!(
        err(&["verify", "-D", "/a", "--start", "00000001000000000000000a"]),
        fatal(
            "invalid segment name \"00000001000000000000000a\" for option --start: 24 \
             uppercase hex digits expected"
        )
    );
    assert!(matches!(
        parse(&args(&["verify", "--help"])),
        Ok(Action::SubHelp(t)) if t.contains("verify reads every record")
    ));
}

#[test]
fn restore_options() {
    let parsed = parse(&args(&[
        "restore",
        "-D",
        "/a",
        "--partial",
        "--prefetch=4",
        "000000010000000000000003",
        "pg_wal/RECOVERYXLOG",
    ]));
    assert_eq!(
        parsed.unwrap(),
        Action::Restore(RestoreOptions {
            directory: "/a".into(),
            partial: true,
            prefetch: 4,
            prefetch_worker: false,
            walfile: "000000010000000000000003".into(),
            dest: "pg_wal/RECOVERYXLOG".into(),
        })
    );
    let restore = |rest: &[&str]| {
        let mut line = vec!["restore", "-D", "/a"];
        line.extend_from_slice(rest);
        err(&line)
    };
    assert_eq!(
        restore(&["00000001.history"]),
        usage("a WAL file name and a destination path are required (%f %p)")
    );
    assert_eq!(
        restore(&["a", "b", "c"]),
        usage("too many command-line arguments (first is \"c\")")
    );
    assert_eq!(
        restore(&["../x", "b"]),
        fatal("invalid file name \"../x\": a WAL file name (%f) expected")
    );
    assert_eq!(
        restore(&["--prefetch=65", "a", "b"]),
        fatal("invalid value \"65\" for option --prefetch: a number of segments from 0 to 64")
    );
    assert_eq!(
        err(&["restore", "a", "b"]),
        usage("no archive specified (-D)")
    );
    for text in [restore_help_text(), verify_help_text()] {
        for l in text.lines() {
            assert!(l.chars().count() < 95, "{l}");
        }
    }
}
