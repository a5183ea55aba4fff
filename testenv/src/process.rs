//! Running a program to completion and turning failure into an [`Error`].

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::error::{Error, IoContext, Result};

/// Runs `cmd`, feeding it `stdin`, and returns its output if it exited with status 0.
/// The error names the command and carries its stderr (and stdout, which psql and
/// pg_ctl sometimes use for the interesting part).
pub(crate) fn run(cmd: &mut Command, stdin: Option<&str>) -> Result<Output> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().context(|| format!("cannot start {cmd:?}"))?;
    // A writer thread: a large script and a large result must not block on each other.
    let writer = match (stdin, child.stdin.take()) {
        (Some(text), Some(mut pipe)) => {
            let text = text.to_owned();
            Some(std::thread::spawn(move || pipe.write_all(text.as_bytes())))
        }
        _ => None,
    };
    let out = child
        .wait_with_output()
        .context(|| format!("cannot wait for {cmd:?}"))?;
    if let Some(w) = writer {
        // A broken pipe just means the program stopped reading (it failed; see below).
        let _ = w.join();
    }
    if !out.status.success() {
        return Err(Error::new(format!(
            "{} failed ({}): {}{}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            match String::from_utf8_lossy(&out.stdout).trim() {
                "" => String::new(),
                s => format!("\nstdout: {s}"),
            }
        )));
    }
    Ok(out)
}

/// `program arg arg ...` without the environment noise of `Command`'s `Debug`.
pub(crate) fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
