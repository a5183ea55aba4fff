//! `-W`: the password is asked on the terminal (a pseudo-terminal from `script(1)` here),
//! read without echo, and used.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use testenv::roles::REPL_SCRAM;

use crate::common::*;

#[test]
fn password_prompt_on_the_terminal() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: no script(1)");
        return;
    }
    let pg = cluster(&[]);
    let password = REPL_SCRAM.password.unwrap();
    let inner = format!(
        "{} --create-slot -S prompted -W -d \"{}\"",
        env!("CARGO_BIN_EXE_pgwal-recv"),
        pg.conninfo(REPL_SCRAM.name, None)
    );
    let mut child = Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .env_remove("PGPASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut stdout = child.stdout.take().unwrap();
    let sink = seen.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let text = || String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    let began = Instant::now();
    // Typed only once the prompt is up: echo goes off (and pending input is flushed, as
    // libpq's prompt does) when it is shown.
    while !text().contains("Password: ") {
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "no prompt: {:?}",
            text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{password}\n").as_bytes()).unwrap();
    let out = wait_output(child, Duration::from_secs(30));
    drop(stdin);
    let _ = reader.join();
    assert!(out.status.success(), "{:?}", text());
    assert!(pg.slot_exists("prompted").unwrap());
    assert!(
        !text().contains(password),
        "the password was echoed: {:?}",
        text()
    );
}
