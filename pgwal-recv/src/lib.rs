//! pgwal-recv: a pg_receivewal-compatible WAL archiver built on pgwire-repl.
//!
//! The program is `src/main.rs`; its modules live in this library so that benchmarks and
//! fuzz targets can reach them (the archive's names and scan, the command line).
//!
//! # Layout
//! - `commands/`: one module per subcommand, each a thin layer over the pieces below:
//!   `archive` (the archiver itself: slot commands, the reconnect loop), `measure`, `status`,
//!   `verify` (read every record of an archive), `restore` (PostgreSQL's restore_command:
//!   one file out of the archive, checked), `cleanup` (remove what recovery from a kept
//!   point on cannot need), `basebackup` (pg_basebackup: `BASE_BACKUP` through the
//!   library, the archives extracted or written as they arrive, `-X stream` on a thread of
//!   its own)
//! - `archive/`: the archive, behind one interface ([`archive::Archive`]) that the receiver
//!   writes through and every command reads and deletes through: file names and suffixes,
//!   compression (`-Z` and the gzip/lz4/zstd streams), the newest-segment scan, history
//!   files, durable writes, the lock; `archive/dir/` is the directory backend,
//!   `archive/objstore.rs` the object-store one (`-D s3://BUCKET/PREFIX`)
//! - `upload`: from the archiver's local spool to the object store (queue, retries, the
//!   position the store holds, the spool's bound)
//! - `stream/`: what every streaming command shares: the start position (slot or server), the
//!   streaming loop (timelines, the receive timeout, the stop signal)
//! - `receive/`: the archiver's side of the stream: one owner of the segment plan and of the
//!   written and flushed positions, writing segments as WAL arrives
//! - `observe/`: lag and rate (pgwire-repl's LagTracker) for the `-v` progress line, the
//!   `--metrics-listen` endpoint and `measure`'s percentiles
//! - `basebackup/`: the client side of `basebackup`'s archives: the streaming tar extractor
//!   (plain format), the `-R` recovery-settings injector, the final fsync of the tree
//! - `cli`: options, validation and help, with pg_receivewal's wording
//! - `connect`: connection options, password prompt, runtime (every subcommand)
//! - `output`, `prompt`: messages and the progress line, and the `-W` password prompt

pub mod archive;
pub mod basebackup;
pub mod cli;
pub mod commands;
pub mod connect;
pub mod observe;
pub mod output;
pub mod prompt;
pub mod receive;
pub mod stream;
pub mod upload;
