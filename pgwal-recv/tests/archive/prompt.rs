//! `-W`: the password is asked on the terminal (a pseudo-terminal from `script(1)` here),
//! read without echo, and used; without `-W`, once the server asks for one; never with `-w`.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use testenv::roles::REPL_SCRAM;

use crate::common::*;

#[test]
fn password_prompt_on_the_terminal() {
    if Command::new("script").arg("--version").output().is_err() {
        testenv::skip("no script(1) to give the archiver a terminal");
        return;
    }
    let pg = cluster(&[]);
    // Asked up front with -W; and without it, once the server asks for a password that was
    // not supplied (the library's typed `needs_password`, as libpq programs prompt after
    // PQconnectionNeedsPassword).
    for (slot, flag) in [("prompted", "-W"), ("asked_by_the_server", "")] {
        create_slot_at_the_prompt(&pg, slot, flag);
    }
    // -w: never prompt; the library's error is the message.
    let out = run(
        bin().args([
            "--create-slot",
            "-S",
            "not_prompted",
            "-w",
            "-d",
            &pg.conninfo(REPL_SCRAM.name, None),
        ]),
        Duration::from_secs(30),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(
        err,
        "pgwal-recv: error: authentication failed: the server requested SCRAM-SHA-256 \
         authentication but no password was supplied\n"
    );
    assert!(!pg.slot_exists("not_prompted").unwrap());
}

/// Runs `--create-slot -S slot [flag]` on a pseudo-terminal (`script(1)`), types the
/// password once the prompt is up, and checks that the slot was made and the password not
/// echoed.
fn create_slot_at_the_prompt(pg: &testenv::Cluster, slot: &str, flag: &str) {
    let password = REPL_SCRAM.password.unwrap();
    let inner = format!(
        "{} --create-slot -S {slot} {flag} -d \"{}\"",
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
            "{slot}: no prompt: {:?}",
            text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{password}\n").as_bytes()).unwrap();
    let out = wait_output(child, Duration::from_secs(30));
    drop(stdin);
    let _ = reader.join();
    assert!(out.status.success(), "{slot}: {:?}", text());
    assert_eq!(
        text().matches("Password: ").count(),
        1,
        "{slot}: {:?}",
        text()
    );
    assert!(pg.slot_exists(slot).unwrap());
    assert!(
        !text().contains(password),
        "the password was echoed: {:?}",
        text()
    );
}
