//! One module per subcommand: its options come from [`crate::cli`], its work from the
//! shared pieces ([`crate::archive`], [`crate::stream`], [`crate::receive`],
//! [`crate::observe`]). Each has a `main` that returns the exit code.

pub mod archive;
pub mod basebackup;
pub mod cleanup;
pub mod measure;
pub mod restore;
pub mod status;
pub mod verify;
