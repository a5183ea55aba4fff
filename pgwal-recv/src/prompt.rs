//! `-W`: reading a password from the terminal without echoing it.

use std::io::{BufRead, BufReader, Write};

use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};

/// Prompts on the controlling terminal; `None` when there is none.
pub fn password(prompt: &str) -> Option<String> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()?;
    let saved = tcgetattr(&tty).ok();
    if let Some(t) = &saved {
        let mut quiet = t.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        let _ = tcsetattr(&tty, OptionalActions::Flush, &quiet);
    }
    let mut out = &tty;
    let _ = write!(out, "{prompt}");
    let _ = out.flush();
    let mut line = String::new();
    let read = BufReader::new(&tty).read_line(&mut line);
    if let Some(t) = &saved {
        let _ = tcsetattr(&tty, OptionalActions::Flush, t);
    }
    let _ = writeln!(out);
    read.ok()?;
    Some(line.trim_end_matches(['\r', '\n']).to_owned())
}
