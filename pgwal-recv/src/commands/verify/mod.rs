//! `pgwal-recv verify`: reads every record of an archive and says what is wrong.

pub mod plan;
pub mod stats;
