//! Shared helpers for the real-server tests.

use std::time::Duration;

use pgwire_repl::{Client, Config, FeedbackConfig, Lsn};
use testenv::{Cluster, Options};

/// A fresh cluster (1 MB WAL segments) with the given extra settings.
pub fn cluster(extra_conf: &[&str]) -> Cluster {
    let mut opts = Options::default();
    for line in extra_conf {
        opts = opts.conf(*line);
    }
    Cluster::start(opts).unwrap_or_else(|e| panic!("could not start PostgreSQL: {e}"))
}

/// The config for `user` (and its password) over TCP.
pub fn config(pg: &Cluster, user: &str, password: Option<&str>) -> Config {
    Config::parse(&pg.conninfo(user, password)).unwrap()
}

/// A replication connection as the trust role.
pub async fn connect(pg: &Cluster) -> Client {
    Client::connect(&config(pg, testenv::roles::REPL_TRUST.name, None))
        .await
        .unwrap()
}

/// Runs SQL as the superuser and parses the one-value answer as an LSN.
pub fn lsn_of(pg: &Cluster, sql: &str) -> Lsn {
    pg.sql(sql).unwrap().trim().parse().unwrap()
}

/// Feedback that never sends unprompted: the positions we report do not move a slot.
pub fn replies_only(receive_timeout: Duration) -> FeedbackConfig {
    FeedbackConfig {
        status_interval: None,
        receive_timeout: Some(receive_timeout),
        reply_to_keepalives: true,
    }
}
