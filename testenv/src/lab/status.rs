//! `testenv status`: the seed's monitor queries on each node, plus lag in bytes.
//!
//! On a primary: `pg_stat_replication` (with the lag from the current WAL position to each
//! standby's replay position) and the replication slots. On a standby:
//! `pg_is_in_recovery()`, `pg_last_wal_receive_lsn()`, `pg_last_wal_replay_lsn()` (with the
//! lag between them) and the WAL receiver.

use std::fmt;
use std::path::PathBuf;

use super::{Lab, NODES};
use crate::cluster::Cluster;

/// The lab at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The lab's directory.
    pub dir: PathBuf,
    /// `postgres --version`'s version, like `15.18`.
    pub version: String,
    /// The name of the node the lab takes for the primary.
    pub primary: &'static str,
    /// `node1`, then `node2`.
    pub nodes: Vec<NodeStatus>,
}

/// One node: what it answered, or that it is down.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeStatus {
    /// `node1` or `node2`.
    pub name: &'static str,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
    /// Whether the server runs (`pg_ctl status`).
    pub running: bool,
    /// `pg_is_in_recovery()`; `None` when it is down or did not answer.
    pub in_recovery: Option<bool>,
    /// A primary's `pg_current_wal_lsn()`.
    pub current_lsn: Option<String>,
    /// A primary's timeline.
    pub timeline: Option<u32>,
    /// A primary's `pg_stat_replication`, one entry per standby.
    pub senders: Vec<Sender>,
    /// `pg_replication_slots`: name, active, `restart_lsn` (empty if none).
    pub slots: Vec<(String, bool, String)>,
    /// A standby's `pg_last_wal_receive_lsn()` (empty if nothing was received yet).
    pub receive_lsn: Option<String>,
    /// A standby's `pg_last_wal_replay_lsn()`.
    pub replay_lsn: Option<String>,
    /// Received but not yet replayed, in bytes.
    pub replay_lag_bytes: Option<i64>,
    /// A standby's WAL receiver: status, the primary's port and the timeline received.
    pub receiver: Option<(String, u16, u32)>,
    /// Why the server did not answer, if it did not.
    pub error: Option<String>,
}

/// One row of `pg_stat_replication`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sender {
    /// `application_name` (the lab's standbys use their node name).
    pub application_name: String,
    /// `client_addr`, or `socket` for a Unix-socket connection.
    pub client: String,
    /// `state`, like `streaming`.
    pub state: String,
    /// `sent_lsn`, `write_lsn`, `flush_lsn`, `replay_lsn` (empty while unknown).
    pub sent_lsn: String,
    /// See `sent_lsn`.
    pub write_lsn: String,
    /// See `sent_lsn`.
    pub flush_lsn: String,
    /// See `sent_lsn`.
    pub replay_lsn: String,
    /// `sync_state`, like `async`.
    pub sync_state: String,
    /// `pg_current_wal_lsn()` minus `replay_lsn`, in bytes.
    pub lag_bytes: Option<i64>,
}

/// One psql script: each result line starts with what it is.
const QUERIES: &str = "\
SELECT 'recovery', pg_is_in_recovery();
SELECT 'primary', pg_current_wal_lsn(),
       ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int
  WHERE NOT pg_is_in_recovery();
SELECT 'sender', application_name, coalesce(host(client_addr), 'socket'), state,
       sent_lsn, write_lsn, flush_lsn, replay_lsn, sync_state,
       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint
  FROM pg_stat_replication WHERE NOT pg_is_in_recovery() ORDER BY application_name;
SELECT 'slot', slot_name, active, restart_lsn FROM pg_replication_slots ORDER BY slot_name;
SELECT 'standby', pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn(),
       pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint
  WHERE pg_is_in_recovery();
SELECT 'receiver', status, sender_port, received_tli FROM pg_stat_wal_receiver;
";

impl Lab {
    /// Asks each running node the seed's monitor questions.
    pub fn status(&self) -> Status {
        let nodes = self
            .nodes
            .iter()
            .zip(NODES)
            .map(|(c, name)| node_status(c, name))
            .collect();
        Status {
            dir: self.dir.clone(),
            version: self.bin.full_version().to_string(),
            primary: self.primary_name(),
            nodes,
        }
    }
}

fn node_status(c: &Cluster, name: &'static str) -> NodeStatus {
    let mut s = NodeStatus {
        name,
        port: c.port(),
        running: c.is_running(),
        ..NodeStatus::default()
    };
    if !s.running {
        return s;
    }
    match c.sql(QUERIES) {
        Ok(out) => parse_into(&mut s, &out),
        Err(e) => s.error = Some(e.message().lines().next().unwrap_or_default().to_string()),
    }
    s
}

fn parse_into(s: &mut NodeStatus, out: &str) {
    let opt = |v: &str| (!v.is_empty()).then(|| v.to_string());
    for line in out.lines() {
        let f: Vec<&str> = line.split('|').collect();
        match f.as_slice() {
            ["recovery", r] => s.in_recovery = Some(*r == "t"),
            ["primary", lsn, tli] => {
                s.current_lsn = opt(lsn);
                s.timeline = tli.parse().ok();
            }
            ["sender", app, client, state, sent, write, flush, replay, sync, lag] => {
                s.senders.push(Sender {
                    application_name: app.to_string(),
                    client: client.to_string(),
                    state: state.to_string(),
                    sent_lsn: sent.to_string(),
                    write_lsn: write.to_string(),
                    flush_lsn: flush.to_string(),
                    replay_lsn: replay.to_string(),
                    sync_state: sync.to_string(),
                    lag_bytes: lag.parse().ok(),
                })
            }
            ["slot", name, active, restart] => {
                s.slots
                    .push((name.to_string(), *active == "t", restart.to_string()))
            }
            ["standby", receive, replay, lag] => {
                s.receive_lsn = opt(receive);
                s.replay_lsn = opt(replay);
                s.replay_lag_bytes = lag.parse().ok();
            }
            ["receiver", status, port, tli] => {
                s.receiver = Some((
                    status.to_string(),
                    port.parse().unwrap_or(0),
                    tli.parse().unwrap_or(0),
                ))
            }
            _ => {}
        }
    }
}

impl NodeStatus {
    /// `primary`, `standby`, `stopped`, or `running` when it did not say.
    pub fn role(&self) -> &'static str {
        match (self.running, self.in_recovery) {
            (false, _) => "stopped",
            (true, Some(false)) => "primary",
            (true, Some(true)) => "standby",
            (true, None) => "running",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "lab in {}: PostgreSQL {}, primary {}",
            self.dir.display(),
            self.version,
            self.primary
        )?;
        for n in &self.nodes {
            write!(f, "{}: {}, port {}", n.name, n.role(), n.port)?;
            if let Some(tli) = n.timeline {
                write!(f, ", timeline {tli}")?;
            }
            if let Some(lsn) = &n.current_lsn {
                write!(f, ", current WAL {lsn}")?;
            }
            if let Some(r) = n.in_recovery {
                write!(f, ", pg_is_in_recovery {}", if r { "t" } else { "f" })?;
            }
            if !n.running && n.name != self.primary {
                write!(
                    f,
                    " (the old primary: `testenv rejoin` makes it a standby of {})",
                    self.primary
                )?;
            }
            writeln!(f)?;
            if let Some(e) = &n.error {
                writeln!(f, "  no answer: {e}")?;
            }
            for s in &n.senders {
                writeln!(
                    f,
                    "  pg_stat_replication: {} from {}, {}, sent {}, write {}, flush {}, \
                     replay {}, {}, lag {}",
                    s.application_name,
                    s.client,
                    s.state,
                    dash(&s.sent_lsn),
                    dash(&s.write_lsn),
                    dash(&s.flush_lsn),
                    dash(&s.replay_lsn),
                    s.sync_state,
                    bytes(s.lag_bytes)
                )?;
            }
            if n.in_recovery == Some(false) && n.senders.is_empty() {
                writeln!(f, "  pg_stat_replication: no standby connected")?;
            }
            for (name, active, restart) in &n.slots {
                writeln!(
                    f,
                    "  slot {name}: {}, restart_lsn {}",
                    if *active { "active" } else { "inactive" },
                    dash(restart)
                )?;
            }
            if n.in_recovery == Some(true) {
                writeln!(
                    f,
                    "  receive {}, replay {}, lag {}",
                    n.receive_lsn.as_deref().unwrap_or("-"),
                    n.replay_lsn.as_deref().unwrap_or("-"),
                    bytes(n.replay_lag_bytes)
                )?;
                match &n.receiver {
                    Some((status, port, tli)) => writeln!(
                        f,
                        "  WAL receiver: {status} from port {port}, timeline {tli}"
                    )?,
                    None => writeln!(f, "  WAL receiver: not running")?,
                }
            }
        }
        Ok(())
    }
}

/// `72 bytes`, or `unknown` before the standby's first reply.
fn bytes(n: Option<i64>) -> String {
    n.map_or("unknown".to_string(), |n| format!("{n} bytes"))
}

fn dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_primary_and_a_standby() {
        let mut p = NodeStatus {
            name: "node1",
            port: 5432,
            running: true,
            ..Default::default()
        };
        parse_into(
            &mut p,
            "recovery|f\nprimary|0/3000148|1\n\
             sender|node2|127.0.0.1|streaming|0/3000148|0/3000148|0/3000148|0/3000100|async|72\n\
             slot|node2_slot|t|0/3000148",
        );
        assert_eq!(p.role(), "primary");
        assert_eq!(p.timeline, Some(1));
        assert_eq!(p.senders[0].lag_bytes, Some(72));
        assert_eq!(p.slots, [("node2_slot".into(), true, "0/3000148".into())]);

        let mut s = NodeStatus {
            name: "node2",
            port: 5433,
            running: true,
            ..Default::default()
        };
        parse_into(
            &mut s,
            "recovery|t\nslot|x|f|\nstandby|0/3000148|0/3000100|72\nreceiver|streaming|5432|1",
        );
        assert_eq!(s.role(), "standby");
        assert_eq!(s.replay_lag_bytes, Some(72));
        assert_eq!(s.receiver, Some(("streaming".into(), 5432, 1)));
        let status = Status {
            dir: PathBuf::from("/lab"),
            version: "15.4".into(),
            primary: "node1",
            nodes: vec![p, s],
        };
        let text = status.to_string();
        assert!(
            text.contains("node1: primary, port 5432, timeline 1"),
            "{text}"
        );
        assert!(text.contains("lag 72 bytes"), "{text}");
        assert!(text.contains("slot x: inactive, restart_lsn -"), "{text}");
        assert!(
            text.contains("WAL receiver: streaming from port 5432, timeline 1"),
            "{text}"
        );

        let stopped = NodeStatus {
            name: "node1",
            port: 1,
            ..Default::default()
        };
        assert_eq!(stopped.role(), "stopped");
    }
}
