//! Observation: lag and rate from the stream ([`monitor::Monitor`], over pgwire-repl's
//! LagTracker), shown as the `-v` progress line, served as OpenMetrics, and summed up as
//! percentiles by `measure`.

pub mod histogram;
pub mod metrics;
pub mod monitor;
pub mod progress;
pub mod wal_stats;
