//! `pgwal-recv status`: the server's own view of its replication, from a plain SQL
//! connection — what the seed guide's monitor.sh showed: `pg_stat_replication` (with the
//! flush lag in bytes), the replication slots (with the WAL each retains), and on a standby
//! its recovery (receive and replay positions, replay lag). Tables, or one JSON object.

use bytes::Bytes;
use pgwire_repl::protocol::query::QueryResult;
use pgwire_repl::Client;

use serde_json::Value;

use crate::cli::StatusOptions;
use crate::connect::{block_on, config, connect};
use crate::output::{bytes, error, report};

const SERVER: &str = "\
SELECT pg_is_in_recovery() AS in_recovery,
       current_setting('server_version') AS server_version,
       CASE WHEN NOT pg_is_in_recovery() THEN pg_current_wal_lsn() END AS current_lsn,
       pg_last_wal_receive_lsn() AS receive_lsn,
       pg_last_wal_replay_lsn() AS replay_lsn,
       CASE WHEN pg_is_in_recovery() THEN now() - pg_last_xact_replay_timestamp() END
           AS replay_lag,
       pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint
           AS replay_lag_bytes,
       (SELECT status FROM pg_stat_wal_receiver) AS receiver_status,
       (SELECT sender_host || ':' || sender_port FROM pg_stat_wal_receiver) AS upstream,
       current_user AS role,
       pg_has_role('pg_read_all_stats', 'USAGE') AS reads_all_stats";

const REPLICATION: &str = "\
SELECT application_name,
       coalesce(host(client_addr), CASE WHEN client_port = -1 THEN 'local' END) AS client,
       state, sent_lsn, write_lsn, flush_lsn, replay_lsn,
       write_lag, flush_lag, replay_lag, sync_state,
       pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
                            ELSE pg_current_wal_lsn() END, flush_lsn)::bigint
           AS flush_lag_bytes
FROM pg_stat_replication ORDER BY application_name, pid";

const SLOTS: &str = "\
SELECT slot_name, slot_type, active, restart_lsn, wal_status,
       pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
                            ELSE pg_current_wal_lsn() END, restart_lsn)::bigint
           AS retained_bytes
FROM pg_replication_slots ORDER BY slot_name";

/// Runs `status` and returns the exit code.
pub fn main(o: StatusOptions) -> i32 {
    block_on(status(o))
}

async fn status(o: StatusOptions) -> i32 {
    let mut cfg = match config(&o.conn) {
        Ok(c) => c,
        Err(e) => {
            error(report(&e));
            return 1;
        }
    };
    // As PostgreSQL's maintenance commands: the postgres database unless one is named.
    if cfg.dbname.is_none() {
        cfg.dbname = Some("postgres".to_owned());
    }
    let mut client = match connect(&mut cfg, &o.conn, false).await {
        Ok(c) => c,
        Err(e) => {
            error(e);
            return 1;
        }
    };
    let mut results = Vec::new();
    for sql in [SERVER, REPLICATION, SLOTS] {
        match query(&mut client, sql).await {
            Ok(r) => results.push(r),
            Err(e) => {
                error(e);
                return 1;
            }
        }
    }
    let _ = client.close().await;
    let [server, repl, slots] = &results[..] else {
        return 1;
    };
    if o.json {
        let document = serde_json::json!({
            "server": json_rows(server).into_iter().next().unwrap_or(Value::Null),
            "replication": json_rows(repl),
            "slots": json_rows(slots),
        });
        println!("{document}");
    } else {
        print!("{}", text(server, repl, slots));
    }
    0
}

async fn query(client: &mut Client, sql: &str) -> Result<QueryResult, String> {
    let mut res = client.simple_query(sql).await.map_err(|e| report(&e))?;
    if res.len() != 1 {
        return Err(format!("expected one result set, got {}", res.len()));
    }
    Ok(res.remove(0))
}

fn cell(v: &Option<Bytes>) -> Option<String> {
    v.as_ref().map(|b| String::from_utf8_lossy(b).into_owned())
}

/// The value of column `name` in row `row`.
fn get(r: &QueryResult, row: usize, name: &str) -> Option<String> {
    let col = r.columns.iter().position(|c| c == name)?;
    r.rows.get(row).and_then(|cells| cell(&cells[col]))
}

/// A column's value as JSON: `*_bytes` as numbers, booleans as booleans, the rest as text.
fn json_value(column: &str, v: Option<String>) -> Value {
    match v {
        None => Value::Null,
        Some(t) if column.ends_with("_bytes") => match t.parse::<i64>() {
            Ok(n) => Value::from(n),
            Err(_) => Value::String(t),
        },
        Some(t) if matches!(column, "active" | "in_recovery" | "reads_all_stats") => {
            Value::Bool(t == "t")
        }
        Some(t) => Value::String(t),
    }
}

/// Each row as an object of its columns, in the query's order.
fn json_rows(r: &QueryResult) -> Vec<Value> {
    r.rows
        .iter()
        .map(|cells| {
            let fields: serde_json::Map<String, Value> = r
                .columns
                .iter()
                .zip(cells)
                .map(|(c, v)| (c.clone(), json_value(c, cell(v))))
                .collect();
            Value::Object(fields)
        })
        .collect()
}

/// A role name as SQL takes it: bare when it would read the same, else double-quoted.
fn sql_ident(name: &str) -> String {
    let plain = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// Columns padded to their widest cell; NULL shows as `-`.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("  {}\n", padded.join("  ").trim_end())
    };
    let mut out = line(headers.to_vec());
    out.push_str(&line(
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect(),
    ));
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// Rows of `r` with the given columns; `*_bytes` columns in human units.
fn rows(r: &QueryResult, columns: &[&str]) -> Vec<Vec<String>> {
    (0..r.rows.len())
        .map(|i| {
            columns
                .iter()
                .map(|c| match get(r, i, c) {
                    None => "-".to_owned(),
                    Some(v) if c.ends_with("_bytes") => match v.parse::<i64>() {
                        Ok(n) if n >= 0 => bytes(n as u64),
                        _ => v,
                    },
                    Some(v) => v,
                })
                .collect()
        })
        .collect()
}

/// A titled table of `columns` (name in the result, header), or `(none)`.
fn section(out: &mut String, title: &str, r: &QueryResult, columns: &[(&str, &str)]) {
    out.push_str(&format!("\n{title}:\n"));
    if r.rows.is_empty() {
        out.push_str("  (none)\n");
        return;
    }
    let names: Vec<&str> = columns.iter().map(|c| c.0).collect();
    let headers: Vec<&str> = columns.iter().map(|c| c.1).collect();
    out.push_str(&table(&headers, &rows(r, &names)));
}

fn text(server: &QueryResult, repl: &QueryResult, slots: &QueryResult) -> String {
    let g = |name| get(server, 0, name).unwrap_or_else(|| "-".to_owned());
    let mut out = String::new();
    if get(server, 0, "in_recovery").as_deref() == Some("t") {
        out.push_str(&format!(
            "server: standby (in recovery), PostgreSQL {}\n  receiving from {} ({}), received {}, replayed {}, replay lag {} ({} behind)\n",
            g("server_version"),
            g("upstream"),
            g("receiver_status"),
            g("receive_lsn"),
            g("replay_lsn"),
            g("replay_lag"),
            get(server, 0, "replay_lag_bytes")
                .and_then(|v| v.parse::<u64>().ok())
                .map_or_else(|| "-".to_owned(), bytes),
        ));
    } else {
        out.push_str(&format!(
            "server: primary, PostgreSQL {}, current WAL {}\n",
            g("server_version"),
            g("current_lsn")
        ));
    }
    section(
        &mut out,
        "replication connections (pg_stat_replication)",
        repl,
        &[
            ("application_name", "application"),
            ("client", "client"),
            ("state", "state"),
            ("sent_lsn", "sent"),
            ("write_lsn", "write"),
            ("flush_lsn", "flush"),
            ("replay_lsn", "replay"),
            ("write_lag", "write lag"),
            ("flush_lag", "flush lag"),
            ("replay_lag", "replay lag"),
            ("sync_state", "sync"),
            ("flush_lag_bytes", "behind"),
        ],
    );
    if !repl.rows.is_empty() && get(server, 0, "reads_all_stats").as_deref() == Some("f") {
        // The server shows such a role only the pid of each connection: say why the
        // columns are empty rather than leave a table of dashes.
        out.push_str(&format!(
            "  (role \"{}\" cannot read these columns: it needs the privileges of \
             pg_read_all_stats, e.g. GRANT pg_monitor TO {})\n",
            g("role"),
            sql_ident(&g("role"))
        ));
    }
    section(
        &mut out,
        "replication slots",
        slots,
        &[
            ("slot_name", "slot"),
            ("slot_type", "type"),
            ("active", "active"),
            ("restart_lsn", "restart_lsn"),
            ("wal_status", "wal_status"),
            ("retained_bytes", "retained"),
        ],
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(columns: &[&str], rows: &[&[Option<&str>]]) -> QueryResult {
        QueryResult {
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows: rows
                .iter()
                .map(|r| {
                    r.iter()
                        .map(|v| v.map(|s| Bytes::from(s.to_owned())))
                        .collect()
                })
                .collect(),
            tag: None,
        }
    }

    #[test]
    fn json_escapes_and_types() {
        let r = result(
            &["slot_name", "active", "retained_bytes", "wal_status"],
            &[&[Some("s\"1"), Some("t"), Some("16777216"), None]],
        );
        assert_eq!(
            Value::Array(json_rows(&r)).to_string(),
            r#"[{"slot_name":"s\"1","active":true,"retained_bytes":16777216,"wal_status":null}]"#
        );
    }

    #[test]
    fn says_why_the_replication_columns_are_empty() {
        let server = |reads: &str| {
            result(
                &["in_recovery", "server_version", "role", "reads_all_stats"],
                &[&[Some("f"), Some("17.2"), Some("Repl"), Some(reads)]],
            )
        };
        let repl = result(&["application_name", "state"], &[&[Some("standby1"), None]]);
        let none = result(&["slot_name"], &[]);
        let hidden = text(&server("f"), &repl, &none);
        assert!(
            hidden.contains(
                "  (role \"Repl\" cannot read these columns: it needs the privileges of \
                 pg_read_all_stats, e.g. GRANT pg_monitor TO \"Repl\")\n"
            ),
            "{hidden}"
        );
        assert!(!text(&server("t"), &repl, &none).contains("cannot read"));
        assert!(
            !text(&server("f"), &result(&["application_name"], &[]), &none).contains("cannot read")
        );
        assert_eq!(sql_ident("replicator"), "replicator");
        assert_eq!(sql_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn tables_align_and_show_null_as_dash() {
        let r = result(
            &[
                "slot_name",
                "slot_type",
                "active",
                "restart_lsn",
                "wal_status",
                "retained_bytes",
            ],
            &[
                &[
                    Some("archiver"),
                    Some("physical"),
                    Some("t"),
                    Some("0/3000000"),
                    Some("reserved"),
                    Some("2500000"),
                ],
                &[Some("x"), Some("physical"), Some("f"), None, None, None],
            ],
        );
        let server = result(
            &["in_recovery", "server_version", "current_lsn"],
            &[&[Some("f"), Some("15.8"), Some("0/3000148")]],
        );
        let out = text(&server, &result(&["application_name"], &[]), &r);
        let want = "\
server: primary, PostgreSQL 15.8, current WAL 0/3000148

replication connections (pg_stat_replication):
  (none)

replication slots:
  slot      type      active  restart_lsn  wal_status  retained
  --------  --------  ------  -----------  ----------  --------
  archiver  physical  t       0/3000000    reserved    2.50 MB
  x         physical  f       -            -           -
";
        assert_eq!(out, want);
    }
}
