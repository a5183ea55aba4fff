//! pgwal-recv: a pg_receivewal-compatible WAL archiver built on pgwire-repl.
//!
//! The program is `src/main.rs`; its modules live in this library so that benchmarks and
//! fuzz targets can reach them (the archive directory's scan, the command line).
//!
//! # Layout
//! - `cli`: options, validation and help, with pg_receivewal's wording
//! - `compress`: the `-Z` specification
//! - `run`: the archiver's flow: slot commands, the reconnect loop
//! - `connect`: connection options, password prompt, runtime and signals (every subcommand)
//! - `receive`: one connection's streaming: start position, history files, timelines
//! - `walfile`: one segment file: preallocated `.partial`, durable rename
//! - `writer`: the segment writer, fed in stream order on the receiving thread
//! - `zfile`: gzip, lz4 and zstd segment streams
//! - `scan`: the archive directory's newest segment (where to resume)
//! - `lock`: one archiver per directory
//! - `monitor`, `progress`, `metrics`, `histogram`: lag and rate (pgwire-repl's LagTracker)
//!   for the `--verbose` progress line, `--metrics-listen` and `measure`'s percentiles
//! - `measure`: stream without writing, report rate and lag
//! - `status`: the server's replication connections, slots and recovery, over SQL
//! - `output`, `prompt`: messages and the progress line, and the `-W` password prompt

pub mod cli;
pub mod compress;
pub mod connect;
pub mod histogram;
pub mod lock;
pub mod measure;
pub mod metrics;
pub mod monitor;
pub mod output;
pub mod progress;
pub mod prompt;
pub mod receive;
pub mod run;
pub mod scan;
pub mod status;
pub mod walfile;
pub mod writer;
pub mod zfile;
