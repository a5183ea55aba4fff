//! pgwal-recv: a pg_receivewal-compatible WAL archiver built on pgwire-repl.
//!
//! # Layout
//! - `cli`: options, validation and help, with pg_receivewal's wording
//! - `compress`: the `-Z` specification
//! - `run`: the program flow: connect, slot commands, the reconnect loop, signals
//! - `receive`: one connection's streaming: start position, history files, timelines
//! - `walfile`: one segment file: preallocated `.partial`, durable rename
//! - `zfile`: gzip, lz4 and zstd segment streams
//! - `scan`: the archive directory's newest segment (where to resume)
//! - `lock`: one archiver per directory
//! - `output`, `prompt`: messages, and the `-W` password prompt

mod cli;
mod compress;
mod lock;
mod output;
mod prompt;
mod receive;
mod run;
mod scan;
mod walfile;
mod zfile;

use cli::Action;

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
        Ok(Action::Run(opts)) => run::main(opts),
        Err(e) => {
            e.print();
            1
        }
    };
    std::process::exit(code);
}
