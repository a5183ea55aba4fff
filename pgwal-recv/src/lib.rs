//! pgwal-recv: a pg_receivewal-compatible WAL archiver built on pgwire-repl.
//!
//! The program is `src/main.rs`; its modules live in this library so that benchmarks and
//! fuzz targets can reach them (the archive directory's scan, the command line).
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

pub mod cli;
pub mod compress;
pub mod lock;
pub mod output;
pub mod prompt;
pub mod receive;
pub mod run;
pub mod scan;
pub mod walfile;
pub mod zfile;
