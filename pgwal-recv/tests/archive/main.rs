//! pgwal-recv against real PostgreSQL servers (testenv): one test binary.

mod basebackup;
mod cleanup;
mod common;
mod compress;
mod demo;
mod diskfull;
mod errors;
mod identity;
mod modes;
mod monitoring;
mod objstore;
mod prompt;
mod recovery;
mod restore;
mod resume;
mod signals;
mod sync;
mod timeline;
mod tls;
mod verify;
