//! The sans-IO protocol core: bytes in, bytes out, time passed in as arguments. Nothing here
//! touches a socket, a clock or a random number generator.

pub mod backend;
pub mod basebackup;
pub mod codec;
pub mod command;
pub mod feedback;
pub mod frontend;
pub mod query;
pub mod replication;
pub mod startup;
pub mod streaming;

#[cfg(test)]
mod tests;
