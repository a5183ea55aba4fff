//! pgwal-recv: a pg_receivewal-compatible WAL archiver built on pgwire-repl. The modules are
//! in the library (`src/lib.rs`).

use pgwal_recv::cli::{self, Action};
use pgwal_recv::commands::{archive, basebackup, cleanup, measure, restore, status, verify};

fn main() {
    // Not args(): it panics on arguments that are not UTF-8.
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let code = match cli::parse(&args) {
        Ok(Action::Help) => {
            print!("{}", cli::help_text());
            0
        }
        Ok(Action::Version) => {
            println!("{}", cli::version_text());
            0
        }
        Ok(Action::SubHelp(text)) => {
            print!("{text}");
            0
        }
        Ok(Action::Run(opts)) => archive::main(opts),
        Ok(Action::Measure(opts)) => measure::main(opts),
        Ok(Action::Status(opts)) => status::main(opts),
        Ok(Action::Verify(opts)) => verify::main(opts),
        Ok(Action::Cleanup(opts)) => cleanup::main(opts),
        Ok(Action::Restore(opts)) => restore::main(opts),
        Ok(Action::Basebackup(opts)) => basebackup::main(opts),
        // As restore_command: one line, and not 1, which would read as "not in the
        // archive" (see commands::restore).
        Err(e) if args.first().map(String::as_str) == Some("restore") => {
            let mut e = e;
            e.hint = e.message.is_empty();
            e.print();
            restore::EXIT_FAILED
        }
        Err(e) => {
            e.print();
            1
        }
    };
    std::process::exit(code);
}
