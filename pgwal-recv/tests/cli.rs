//! The command line of the built binary: help, version, every validation error, and the
//! warnings printed before connecting. None of these needs a server, because pg_receivewal
//! validates everything before connecting; each run happens in an empty scratch directory
//! that must still be empty afterwards.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

const HINT: &str = "pgwal-recv: hint: Try \"pgwal-recv --help\" for more information.";

/// An empty directory of its own for one test, removed when dropped.
struct Scratch(tempfile::TempDir);

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix("pgwal-recv-cli-")
            .tempdir()
            .expect("create scratch directory");
        Scratch(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    /// Runs the binary in this directory, with no libpq variables that could change its mind.
    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgwal-recv"));
        cmd.args(args).current_dir(self.path());
        for var in [
            "PGHOST",
            "PGPORT",
            "PGUSER",
            "PGDATABASE",
            "PGSERVICE",
            "PGPASSWORD",
        ] {
            cmd.env_remove(var);
        }
        let out = cmd.output().expect("run pgwal-recv");
        self.assert_empty(args);
        out
    }

    fn assert_empty(&self, args: &[&str]) {
        let left: Vec<_> = fs::read_dir(self.path())
            .expect("read scratch directory")
            .map(|e| e.expect("directory entry").file_name())
            .collect();
        assert!(left.is_empty(), "{args:?} created {left:?}");
    }
}

fn lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Runs `args` and checks it fails with exit code 1, nothing on stdout and exactly `stderr`.
fn fails(args: &[&str], stderr: &[&str]) {
    let dir = Scratch::new();
    let out = dir.run(args);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
    assert!(
        out.stdout.is_empty(),
        "{args:?}: stdout {:?}",
        lines(&out.stdout)
    );
    assert_eq!(lines(&out.stderr), stderr, "{args:?}");
}

/// A getopt complaint: its own text, untagged, then the hint.
fn getopt(args: &[&str], msg: &str) {
    fails(args, &[&format!("pgwal-recv: {msg}"), HINT]);
}

/// A usage error: tagged, then the hint.
fn usage(args: &[&str], msg: &str) {
    fails(args, &[&format!("pgwal-recv: error: {msg}"), HINT]);
}

/// A tagged error without the hint.
fn fatal(args: &[&str], msg: &str) {
    fails(args, &[&format!("pgwal-recv: error: {msg}")]);
}

#[test]
fn help_goes_to_stdout() {
    for arg in ["--help", "-?"] {
        let dir = Scratch::new();
        let out = dir.run(&[arg, "--not-an-option"]);
        assert_eq!(out.status.code(), Some(0), "{arg}");
        assert!(out.stderr.is_empty(), "{arg}: {:?}", lines(&out.stderr));
        let help = lines(&out.stdout);
        assert_eq!(
            help[0],
            "pgwal-recv receives PostgreSQL streaming write-ahead logs."
        );
        assert!(help.iter().any(|l| l.starts_with("  -D, --directory=DIR ")));
        assert!(help.iter().any(|l| l.contains("zstd")));
        for line in &help {
            assert!(line.chars().count() < 95, "too wide: {line:?}");
        }
    }
}

#[test]
fn version_goes_to_stdout() {
    for arg in ["--version", "-V"] {
        let dir = Scratch::new();
        let out = dir.run(&[arg]);
        assert_eq!(out.status.code(), Some(0), "{arg}");
        assert!(out.stderr.is_empty());
        assert_eq!(
            lines(&out.stdout),
            [format!(
                "pgwal-recv (pgwire-repl) {}",
                env!("CARGO_PKG_VERSION")
            )]
        );
    }
}

#[test]
fn help_and_version_later_on_the_line() {
    fails(&["-D", ".", "--help"], &[HINT]);
    fails(&["-D", ".", "--version"], &[HINT]);
    getopt(&["-D", ".", "-?"], "invalid option -- '?'");
    getopt(&["-D", ".", "-V"], "invalid option -- 'V'");
}

#[test]
fn getopt_complaints() {
    getopt(&["--foo"], "unrecognized option '--foo'");
    getopt(&["--foo=bar"], "unrecognized option '--foo=bar'");
    getopt(&["-x"], "invalid option -- 'x'");
    getopt(&["-vx"], "invalid option -- 'x'");
    getopt(&["-D"], "option requires an argument -- 'D'");
    getopt(&["-D", ".", "-s"], "option requires an argument -- 's'");
    getopt(
        &["--directory"],
        "option '--directory' requires an argument",
    );
    getopt(&["--direc"], "option '--directory' requires an argument");
    getopt(
        &["--no-loop=1"],
        "option '--no-loop' doesn't allow an argument",
    );
    getopt(
        &["--no"],
        "option '--no' is ambiguous; possibilities: '--no-loop' '--no-password' '--no-sync' '--no-verify'",
    );
}

#[test]
fn option_values() {
    fatal(
        &["-D", ".", "-E", "zz"],
        "could not parse end position \"zz\"",
    );
    fatal(
        &["-D", ".", "--endpos="],
        "could not parse end position \"\"",
    );
    fatal(
        &["-D", ".", "-s", "-1"],
        "-s/--status-interval must be in range 0..2147483",
    );
    fatal(
        &["-D", ".", "--status-interval=2147484"],
        "-s/--status-interval must be in range 0..2147483",
    );
    fatal(
        &["-D", ".", "-s", "5x"],
        "invalid value \"5x\" for option -s/--status-interval",
    );
}

#[test]
fn checks_after_the_options() {
    usage(
        &["-D", ".", "extra"],
        "too many command-line arguments (first is \"extra\")",
    );
    usage(
        &["a", "-D", ".", "b"],
        "too many command-line arguments (first is \"a\")",
    );
    usage(
        &["-D", ".", "--", "-v"],
        "too many command-line arguments (first is \"-v\")",
    );
    usage(
        &["--create-slot", "--drop-slot"],
        "cannot use --create-slot together with --drop-slot",
    );
    usage(
        &["--create-slot"],
        "--create-slot needs a slot to be specified using --slot",
    );
    usage(
        &["--drop-slot"],
        "--drop-slot needs a slot to be specified using --slot",
    );
    usage(
        &["-D", ".", "--synchronous", "--no-sync"],
        "cannot use --synchronous together with --no-sync",
    );
    usage(&[], "no target directory specified");
    usage(&["-v", "-n"], "no target directory specified");
}

#[test]
fn compression() {
    fatal(
        &["-D", ".", "-Z", "bogus"],
        "unrecognized compression algorithm: \"bogus\"",
    );
    fatal(
        &["-D", ".", "-Z", "gzip:10"],
        "invalid compression specification: compression algorithm \"gzip\" expects a \
         compression level between 1 and 9 (default at -1)",
    );
    fatal(
        &["--create-slot", "-S", "s", "-Z", "bogus"],
        "unrecognized compression algorithm: \"bogus\"",
    );
}

#[test]
fn directory_must_exist() {
    fatal(
        &["-D", "missing"],
        "could not open directory \"missing\": No such file or directory",
    );
    let dir = Scratch::new();
    let file = dir.path().join("file");
    fs::write(&file, b"").expect("write file");
    let out = dir_run_with_file(&file);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        lines(&out.stderr),
        [format!(
            "pgwal-recv: error: could not open directory \"{}\": Not a directory",
            file.display()
        )]
    );
}

/// `-D <a regular file>`, run outside the scratch directory that holds the file.
fn dir_run_with_file(file: &Path) -> Output {
    let dir = Scratch::new();
    dir.run(&["-D", file.to_str().expect("UTF-8 path")])
}

/// The library prints nothing itself: a warning from resolving the connection options (a
/// password file with group access, ignored as libpq ignores it) is printed by pgwal-recv in
/// its own style, before the failure it may explain (no server is needed for that).
#[test]
fn connection_warnings_in_our_style() {
    use std::os::unix::fs::PermissionsExt;
    let files = Scratch::new();
    let passfile = files.path().join("pgpass");
    fs::write(&passfile, "*:*:*:*:secret\n").expect("write password file");
    fs::set_permissions(&passfile, fs::Permissions::from_mode(0o640)).expect("chmod");
    let no_server = files.path().join("no-server");
    let conninfo = format!(
        "host={} user=u passfile={}",
        no_server.display(),
        passfile.display()
    );
    fails(
        &["--create-slot", "-S", "s", "-w", "-d", &conninfo],
        &[
            &format!(
                "pgwal-recv: warning: password file \"{}\" has group or world access; \
                 permissions should be u=rw (0600) or less",
                passfile.display()
            ),
            &format!(
                "pgwal-recv: error: connection to server on socket \"{}/.s.PGSQL.5432\" \
                 failed: No such file or directory",
                no_server.display()
            ),
        ],
    );
}

/// As restore_command, a bad command line must not read as "not in the archive" (exit 1,
/// which ends recovery early): 255 and one line.
#[test]
fn restore_command_line_errors_exit_255_with_one_line() {
    for line in [
        &["restore", "-D", "/nonexistent", "onlyone"][..],
        &["restore", "--bogus", "-D", "/a", "a", "b"],
        &[
            "restore",
            "-D",
            "/nonexistent",
            "000000010000000000000001",
            "/tmp/x",
        ],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_pgwal-recv"))
            .args(line)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(255), "{line:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{line:?}: {err}");
    }
}

#[test]
fn cleanup_errors() {
    usage(
        &["cleanup", "--keep-within", "7d"],
        "no archive specified (-D)",
    );
    usage(
        &["cleanup", "-D", "."],
        "what to keep must be specified using --keep-from or --keep-within",
    );
    usage(
        &[
            "cleanup",
            "-D",
            ".",
            "--keep-from",
            "0/1",
            "--keep-within",
            "7d",
        ],
        "cannot use --keep-from together with --keep-within",
    );
    fatal(
        &["cleanup", "-D", ".", "--keep-within", "7"],
        "invalid value \"7\" for option --keep-within: a number and a unit (s, m, h, d, w) \
         expected, as in 36h or 7d",
    );
    fatal(
        &[
            "cleanup",
            "-D",
            "/nonexistent/archive",
            "--keep-within",
            "7d",
        ],
        "could not read directory \"/nonexistent/archive\": No such file or directory",
    );
}

#[test]
fn cleanup_of_an_archive_without_segments_removes_nothing() {
    let dir = Scratch::new();
    let out = dir.run(&["cleanup", "-D", ".", "--keep-from", "0/5000000", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", lines(&out.stderr));
    assert_eq!(
        lines(&out.stdout),
        [r#"{"dry_run":false,"cut":null,"removed":[],"kept":0,"bytes_removed":0}"#]
    );
    let help = dir.run(&["cleanup", "--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(lines(&help.stdout)
        .iter()
        .any(|l| l.starts_with("      --keep-from=WHERE ")));
}
