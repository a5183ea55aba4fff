//! Real PostgreSQL servers for integration tests, started and torn down by the tests, and a
//! primary/standby [lab] that stays up.
//!
//! [`Cluster::start`] runs `initdb` in a fresh temporary directory and starts a server on a
//! free port of 127.0.0.1 and on a private Unix socket, configured for physical replication
//! (`wal_level = replica`, WAL senders and slots, replication commands logged) with small
//! WAL segments. It creates a set of [roles] — one per authentication method, one without
//! `REPLICATION`, one without a `pg_hba.conf` line — so that clients can be tested against
//! each. [`Cluster::make_standby`] makes a streaming hot standby of it, and
//! [`Cluster::promote`] turns that into a primary. Dropping a `Cluster` stops the server
//! immediately and deletes its directory, also when the test panics; a watchdog process
//! does the same if the test process dies without unwinding.
//!
//! For an archive kept in object storage, [`Garage::start`] runs a real Garage cluster
//! (S3-compatible) of one or three nodes on loopback, with a bucket and a key, and kills and
//! restarts its nodes on demand.
//!
//! Everything is synchronous (`std::process`); SQL goes through `psql`.
//!
//! # Finding PostgreSQL
//!
//! The server programs come from `$PG_BINDIR`, else `pg_config --bindir`, else the newest
//! `/usr/lib/postgresql/<N>/bin` ([`PgBin`]). With `PG_VERSION=<major>` (13 to 18) they come
//! instead from that major's newest build on the npm registry, fetched once into a cache
//! ([`PgBin::from_npm`]); on a machine with no server at all, the newest supported major
//! the same way. Client programs (`psql`, `pg_basebackup`, `pg_receivewal`, `pg_waldump`)
//! are looked up beside the server, then in the versioned directories, then on `PATH`, then
//! in the PyPI wheels that carry them ([`pypi`], fetched once into the cache), and only one
//! that works with the server's version is taken ([`PgBin::tool`]). Standbys and the base
//! backups of recovery tests are taken by `pgwal-recv basebackup`, run in this process
//! ([`CloneMethod`]): no client program is needed for them.
//!
//! # Running as root
//!
//! PostgreSQL will not run as root. When the tests do, every program is started as the OS
//! user `postgres` (or a created `testenv-pg`) via `setpriv`/`runuser`, and each cluster's
//! temporary directory belongs to that user ([`OsUser`]). `std::env::temp_dir()` must then
//! be reachable by that user (`/tmp` is).
//!
//! # Layout
//!
//! - `cluster`: [`Cluster`], its directory layout, start/stop/kill/drop, connection strings
//! - `options`: [`Options`] for `initdb` and `postgresql.conf`
//! - `roles`: the test [roles] and the `pg_hba.conf` that goes with them
//! - `sql`: running SQL through `psql`
//! - `wal`: slots, LSNs, segment switches, generating WAL, reading `pg_wal`
//! - `standby`: streaming standbys and promotion
//! - `ssl`: TLS on a test server (certificate files, `ssl = on`) and extra `pg_hba.conf` lines
//! - `clone`: base backups by `pgwal-recv basebackup` in this process (standbys, recoveries)
//! - `garage`: [`Garage`], a Garage object store (S3) of one or three nodes on loopback
//! - `lab`: the primary/standby lab behind the `testenv` program (`src/main.rs`)
//! - `npm`: server builds from the npm registry, cached
//! - `pypi`: client programs from PyPI wheels, cached
//! - `cache`: where fetched builds are kept, and how one is put there whole
//! - `bin`: [`PgBin`], finding programs and the major version
//! - `os_user`: [`OsUser`], dropping root privileges
//! - `tempdir`: private temporary directories and the cleanup watchdog
//! - `skip`: [`skip`], a test that cannot run here fails unless `PGWIRE_REPL_ALLOW_SKIP=1`
//! - `process`, `conninfo`, `wait`, `error`: small helpers
//!
//! # Example
//!
//! ```no_run
//! use testenv::{roles, Cluster, Options};
//!
//! let primary = Cluster::start(Options::default())?;
//! primary.sql("CREATE TABLE t (x int); INSERT INTO t VALUES (1)")?;
//! let standby = primary.make_standby("standby_slot")?;
//! let conninfo = primary.conninfo(roles::REPL_SCRAM.name, roles::REPL_SCRAM.password);
//! // ... connect a replication client with `conninfo` ...
//! standby.promote()?;
//! # Ok::<(), testenv::Error>(())
//! ```

mod bin;
mod cache;
mod clone;
mod cluster;
mod conninfo;
pub mod demo;
mod error;
mod garage;
pub mod lab;
mod npm;
mod options;
mod os_user;
#[cfg(feature = "pki")]
pub mod pki;
mod process;
pub mod pypi;
mod recovery;
pub mod roles;
mod skip;
mod sql;
mod ssl;
mod standby;
mod tempdir;
mod wait;
mod wal;

pub use bin::{PgBin, PG_VERSION_VAR};
pub use cache::cache_root as npm_cache_root;
pub use cluster::{Cluster, HOST};
pub use conninfo::quote_conninfo_value;
pub use error::{Error, Result};
pub use garage::{Garage, GARAGE_BIN_VAR, GARAGE_INSTALL};
pub use npm::{MAJORS, PACKAGE as NPM_PACKAGE};
pub use options::Options;
pub use os_user::{is_root, OsUser, CREATED_OS_USER};
pub use recovery::RecoveryMode;
pub use roles::{quote_ident, quote_literal, Role};
pub use skip::{skip, skips_allowed, ALLOW_SKIP_VAR};
pub use standby::CloneMethod;
pub use wait::wait_for;
pub use wal::WAL_TABLE;
