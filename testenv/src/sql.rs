//! Running SQL through `psql`.

use std::process::Command;

use crate::cluster::Cluster;
use crate::error::{Error, Result};
use crate::process::run;

impl Cluster {
    /// Runs `sql` as the superuser over the Unix socket and returns psql's trimmed output:
    /// tuples only, unaligned (`|` between columns, one row per line).
    ///
    /// The text is a psql script: several statements are fine, and the first error stops
    /// it and fails the call with psql's stderr.
    pub fn sql(&self, sql: &str) -> Result<String> {
        self.psql(&self.socket_conninfo(self.superuser()), None, sql)
    }

    /// Like [`sql`](Self::sql) but as `user` over TCP, with `password` passed in
    /// `PGPASSWORD`: it goes through that role's `host` line in `pg_hba.conf`.
    pub fn sql_as(&self, user: &str, password: Option<&str>, sql: &str) -> Result<String> {
        self.psql(&self.conninfo(user, None), password, sql)
    }

    /// psql in batch mode connected by `conninfo`, as the server's OS user: no psqlrc,
    /// unaligned tuples only, quiet, stopping at the first error, a 10 s connect timeout.
    /// Add `-f -` (SQL on stdin) or `-c SQL`.
    pub fn psql_command(&self, conninfo: &str) -> Result<Command> {
        let mut cmd = self.command(&self.bin.tool("psql")?);
        cmd.args([
            "-X",
            "-A",
            "-t",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            conninfo,
        ])
        .env("PGCONNECT_TIMEOUT", "10");
        Ok(cmd)
    }

    /// Runs `sql` with psql connected by `conninfo` (add `replication=true` to send
    /// replication commands such as `IDENTIFY_SYSTEM`); `password` goes in `PGPASSWORD`.
    pub fn psql(&self, conninfo: &str, password: Option<&str>, sql: &str) -> Result<String> {
        let mut cmd = self.psql_command(conninfo)?;
        cmd.args(["-f", "-"]);
        if let Some(pw) = password {
            cmd.env("PGPASSWORD", pw);
        }
        let out = run(&mut cmd, Some(sql)).map_err(|e| {
            Error::new(format!(
                "{e}\nSQL: {}",
                sql.chars().take(500).collect::<String>()
            ))
        })?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// `SELECT pg_is_in_recovery()`.
    pub fn is_in_recovery(&self) -> Result<bool> {
        Ok(self.sql("SELECT pg_is_in_recovery()")? == "t")
    }
}
