//! pgwal-recv against real PostgreSQL servers (testenv): one test binary.

mod common;
mod errors;
mod identity;
