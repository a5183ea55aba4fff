//! The primary/standby lab: two servers that outlive the program that made them.
//!
//! The lab is the seed's Docker setup done natively: a primary and a hot standby cloned from
//! it through a physical replication slot, a `replicator` role (SCRAM-SHA-256, as in the
//! seed's `pg_hba.conf`, and a member of `pg_monitor` so that it can read the replication
//! statistics), the superuser `postgres` that the seed's own SQL runs as (with a password,
//! over TCP: [`admin_conninfo`](Lab::admin_conninfo)), and the seed's `users` table in
//! database `postgres` ([`INIT_SQL`]). Failover follows the seed's order:
//! [`promote`](Lab::promote) stops the primary, as in a failure, then promotes the standby
//! and checks it takes writes; [`rejoin`](Lab::rejoin) re-clones the old primary as a standby
//! of the new one. A standby promoted by hand (the seed's `SELECT pg_promote()`) counts as the
//! primary once the old one is stopped. Each server keeps its directory and port throughout,
//! so the conninfos printed at the start stay valid; [`status`](Lab::status) tells who is
//! primary.
//!
//! Everything lives in one directory (by default [`DEFAULT_DIR`]): `lab.conf` (programs,
//! password, ports, who is primary), `node1/` and `node2/` (each with `data/`, `sock/` and
//! `server.log`), and a `.gitignore` that ignores it all. The servers run as the OS user of
//! [`OsUser`] and are started by `pg_ctl`, detached from the caller; nothing
//! stops them but [`down`](Lab::down) (or `pg_ctl`).
//!
//! ```no_run
//! use std::path::Path;
//! use testenv::lab::Lab;
//!
//! let lab = Lab::up(Path::new("/tmp/lab"), testenv::PgBin::select(None)?)?;
//! println!("primary: {}", lab.primary_conninfo());
//! // ... stream from it with pgwire-repl ...
//! Lab::open(Path::new("/tmp/lab"))?.down()?;
//! # Ok::<(), testenv::Error>(())
//! ```

mod state;
mod status;

use std::path::{Path, PathBuf};

use crate::bin::PgBin;
use crate::cluster::Cluster;
use crate::conninfo;
use crate::error::{Error, IoContext, Result};
use crate::options::Options;
use crate::os_user::OsUser;
use crate::process::run;
use crate::roles::{quote_hba, quote_literal};
use crate::standby::CloneMethod;
use state::State;

pub use state::NODES;
pub use status::{NodeStatus, Sender, Status};

/// Where the lab lives unless told otherwise (relative to the current directory).
pub const DEFAULT_DIR: &str = ".testenv";

/// The role the printed conninfos use: `LOGIN REPLICATION`, SCRAM-SHA-256, in `pg_monitor`.
pub const REPLICATOR: &str = "replicator";

/// The superuser of the admin conninfos, as in the seed (`psql -U postgres`): its
/// `pg_promote()`, `pg_create_physical_replication_slot` and the full `pg_stat_replication`.
pub const ADMIN: &str = "postgres";

/// The seed's data, run on the primary by [`Lab::up`].
pub const INIT_SQL: &str = include_str!("init.sql");

/// A lab: its directory, its programs and its two servers.
#[derive(Debug)]
pub struct Lab {
    dir: PathBuf,
    bin: PgBin,
    state: State,
    nodes: [Cluster; 2],
}

impl Lab {
    /// Creates a lab in `dir` (absent or empty) with the programs of `bin`: the primary
    /// `node1` and its streaming hot standby `node2`, both running when this returns.
    /// A failure removes whatever was made.
    pub fn up(dir: &Path, bin: PgBin) -> Result<Lab> {
        let dir = prepare_dir(dir)?;
        let bindir = bin.bindir().to_path_buf();
        let made = Lab::build(&dir, bin);
        if made.is_err() {
            for name in NODES {
                let node = dir.join(name);
                if node.join("data").join("postmaster.pid").exists() {
                    stop_dir(&bindir, &node);
                }
            }
            let _ = remove_lab_files(&dir);
        }
        made
    }

    fn build(dir: &Path, bin: PgBin) -> Result<Lab> {
        std::fs::write(
            dir.join(".gitignore"),
            "# Made by testenv: a lab's servers.\n*\n",
        )
        .context(|| format!("cannot write in {}", dir.display()))?;
        let password = random_hex(12)?;
        let admin_password = random_hex(12)?;
        let mut primary = Cluster::new_kept(bin.clone(), node_options(0), dir.join(NODES[0]))?;
        primary.initdb(&hba_conf(primary.superuser()))?;
        primary.start_on_free_port()?;
        // The bootstrap superuser is named after the servers' OS user: `postgres` when run
        // as root, else made.
        let admin = if primary.superuser() == ADMIN {
            "ALTER ROLE"
        } else {
            "CREATE ROLE"
        };
        primary
            .sql(&format!(
                "SET password_encryption = 'scram-sha-256';\n\
                 CREATE ROLE {REPLICATOR} WITH LOGIN REPLICATION PASSWORD {};\n\
                 {admin} {ADMIN} WITH SUPERUSER LOGIN PASSWORD {};\n{INIT_SQL}",
                quote_literal(&password),
                quote_literal(&admin_password)
            ))
            .map_err(|e| Error::with_source("cannot create the roles and the data", e))?;
        let mut standby = Cluster::new_kept(bin.clone(), node_options(1), dir.join(NODES[1]))?;
        let slot = slot_name(1);
        let upstream = upstream_conninfo(&primary, &password, NODES[1]);
        primary.clone_to_via(&standby, &slot, CloneMethod::Auto, Some(&upstream))?;
        standby.follow(&upstream, &slot)?;
        standby.start_on_free_port()?;
        standby.wait_streaming()?;
        let state = State {
            bindir: bin.bindir().to_path_buf(),
            password,
            admin_password: Some(admin_password),
            primary: 0,
            ports: [primary.port(), standby.port()],
        };
        state.save(dir)?;
        Ok(Lab {
            dir: dir.to_path_buf(),
            bin,
            state,
            nodes: [primary, standby],
        })
    }

    /// The lab in `dir`, made by [`up`](Self::up) (in this or another process).
    pub fn open(dir: &Path) -> Result<Lab> {
        let dir =
            std::path::absolute(dir).context(|| format!("cannot resolve {}", dir.display()))?;
        let state = State::load(&dir)?;
        let bin = PgBin::at(&state.bindir).map_err(|e| {
            Error::with_source(
                format!(
                    "the lab's PostgreSQL programs in {} are gone",
                    state.bindir.display()
                ),
                e,
            )
        })?;
        let node = |i: usize| {
            Cluster::open_kept(
                bin.clone(),
                node_options(i),
                dir.join(NODES[i]),
                state.ports[i],
            )
        };
        let nodes = [node(0)?, node(1)?];
        let mut lab = Lab {
            dir,
            bin,
            state,
            nodes,
        };
        lab.notice_manual_promotion()?;
        Ok(lab)
    }

    /// The seed promotes by hand (`docker-compose stop` of the primary, then `SELECT
    /// pg_promote()` on the standby): when the recorded primary is stopped and the other
    /// node runs out of recovery, the other node is the primary from now on.
    fn notice_manual_promotion(&mut self) -> Result<()> {
        let (p, s) = (self.state.primary, 1 - self.state.primary);
        if self.nodes[p].is_running() || !self.nodes[s].is_running() {
            return Ok(());
        }
        if matches!(self.nodes[s].is_in_recovery(), Ok(false)) {
            self.state.primary = s;
            self.state.save(&self.dir)?;
        }
        Ok(())
    }

    /// The lab's directory (absolute).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server programs.
    pub fn bin(&self) -> &PgBin {
        &self.bin
    }

    /// The node that is the primary (since `up`, or since the last [`promote`](Self::promote)).
    pub fn primary(&self) -> &Cluster {
        &self.nodes[self.state.primary]
    }

    /// The other node: a standby of the primary, or after a promotion the old primary,
    /// stopped until [`rejoin`](Self::rejoin).
    pub fn standby(&self) -> &Cluster {
        &self.nodes[1 - self.state.primary]
    }

    /// The name (`node1` or `node2`) of [`primary`](Self::primary).
    pub fn primary_name(&self) -> &'static str {
        NODES[self.state.primary]
    }

    /// The name of [`standby`](Self::standby).
    pub fn standby_name(&self) -> &'static str {
        NODES[1 - self.state.primary]
    }

    /// The node called `name` (see [`NODES`]).
    pub fn node(&self, name: &str) -> Option<&Cluster> {
        NODES
            .iter()
            .position(|n| *n == name)
            .map(|i| &self.nodes[i])
    }

    /// A conninfo for `node` as [`REPLICATOR`] over TCP to database `postgres`, usable as-is
    /// by psql, pgwal-recv and pgwire-repl: `host=127.0.0.1 port=… user=replicator
    /// password=… dbname=postgres`.
    pub fn conninfo(&self, node: &Cluster) -> String {
        let port = node.port().to_string();
        conninfo::build_plain(&[
            ("host", crate::HOST),
            ("port", &port),
            ("user", REPLICATOR),
            ("password", &self.state.password),
            ("dbname", "postgres"),
        ])
    }

    /// [`conninfo`](Self::conninfo) of the primary.
    pub fn primary_conninfo(&self) -> String {
        self.conninfo(self.primary())
    }

    /// [`conninfo`](Self::conninfo) of the standby.
    pub fn standby_conninfo(&self) -> String {
        self.conninfo(self.standby())
    }

    /// A conninfo for `node` as the superuser [`ADMIN`] over TCP to database `postgres`,
    /// for the seed's own SQL (`pg_promote()`, all of `pg_stat_replication`). Fails for a
    /// lab made before the lab had one.
    pub fn admin_conninfo(&self, node: &Cluster) -> Result<String> {
        let password = self.state.admin_password.as_deref().ok_or_else(|| {
            Error::new(format!(
                "the lab in {} has no {ADMIN} password (made by an older testenv: \
                 `testenv down` and `up` again)",
                self.dir.display()
            ))
        })?;
        let port = node.port().to_string();
        Ok(conninfo::build_plain(&[
            ("host", crate::HOST),
            ("port", &port),
            ("user", ADMIN),
            ("password", password),
            ("dbname", "postgres"),
        ]))
    }

    /// The replicator's password.
    pub fn password(&self) -> &str {
        &self.state.password
    }

    /// The seed's failover: stops the primary (fast shutdown, as a failure would leave
    /// it: gone without telling the standby), promotes the standby, and checks that it
    /// takes a write. The promoted standby is the primary from then on.
    pub fn promote(&mut self) -> Result<()> {
        let (p, s) = (self.state.primary, 1 - self.state.primary);
        let standby = &self.nodes[s];
        if !standby.is_running() {
            return Err(Error::new(format!(
                "{} is not running: `testenv rejoin` makes it a standby of {} first",
                NODES[s], NODES[p]
            )));
        }
        if !standby.is_in_recovery()? {
            return Err(Error::new(format!(
                "{} is not a standby (it is not in recovery)",
                NODES[s]
            )));
        }
        if self.nodes[p].is_running() {
            self.nodes[p].stop()?;
        }
        standby.promote()?;
        standby
            .sql("BEGIN; CREATE TABLE testenv_write_check (x int); ROLLBACK;")
            .map_err(|e| {
                Error::with_source(format!("{} was promoted but takes no writes", NODES[s]), e)
            })?;
        self.state.primary = s;
        self.state.save(&self.dir)
    }

    /// Re-clones the stopped old primary as a standby of the current primary, streaming
    /// through its own slot there, on its old port. Fails if it already streams.
    pub fn rejoin(&mut self) -> Result<()> {
        let (p, o) = (self.state.primary, 1 - self.state.primary);
        let primary = &self.nodes[p];
        if !primary.is_running() || primary.is_in_recovery()? {
            return Err(Error::new(format!(
                "{} is not a running primary: nothing to rejoin",
                NODES[p]
            )));
        }
        let other = &self.nodes[o];
        if other.is_running() {
            if other.is_in_recovery()? {
                return Err(Error::new(format!(
                    "{} is already a standby of {}: nothing to rejoin (`testenv promote` \
                     fails over first)",
                    NODES[o], NODES[p]
                )));
            }
            // Two primaries: the other one loses.
            other.stop()?;
        }
        let slot = slot_name(o);
        other.remove_data_dir()?;
        let upstream = upstream_conninfo(primary, &self.state.password, NODES[o]);
        primary.clone_to_via(other, &slot, CloneMethod::Auto, Some(&upstream))?;
        other.follow(&upstream, &slot)?;
        let port = other.port();
        self.nodes[o].start_on_port(port)?;
        self.nodes[o].wait_streaming()
    }

    /// Stops both servers and deletes the lab's directory (what `up` put in it; the
    /// directory itself goes if nothing else is left).
    pub fn down(self) -> Result<()> {
        for node in &self.nodes {
            if node.data_dir().join("postmaster.pid").exists() {
                stop_dir(self.bin.bindir(), node.temp_dir());
            }
        }
        for node in &self.nodes {
            if node.is_running() {
                return Err(Error::new(format!(
                    "cannot stop the server in {}",
                    node.data_dir().display()
                )));
            }
        }
        remove_lab_files(&self.dir)
    }
}

/// `dir` made ready for a new lab: created if absent, else empty; absolute; reachable by
/// the servers' OS user.
fn prepare_dir(dir: &Path) -> Result<PathBuf> {
    let dir = std::path::absolute(dir).context(|| format!("cannot resolve {}", dir.display()))?;
    if dir.join(state::FILE).exists() {
        return Err(Error::new(format!(
            "a lab is already in {} (`testenv down` removes it)",
            dir.display()
        )));
    }
    let mut created = false;
    match std::fs::read_dir(&dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(Error::new(format!(
                    "{} is not empty: choose another --dir",
                    dir.display()
                )));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(&dir).context(|| format!("cannot create {}", dir.display()))?;
            created = true;
        }
        Err(e) => return Err(e).context(|| format!("cannot read {}", dir.display())),
    }
    let user = OsUser::get()?;
    let mut cd = user.command(Path::new("/bin/sh"));
    cd.args(["-c", "cd \"$1\"", "sh"]).arg(&dir);
    if run(&mut cd, None).is_err() {
        if created {
            let _ = std::fs::remove_dir(&dir);
        }
        return Err(Error::new(format!(
            "the servers' OS user {} cannot reach {} (a private parent directory?): \
             choose another --dir",
            user.name(),
            dir.display()
        )));
    }
    Ok(dir)
}

/// Stops the server of the node directory `node` with `pg_ctl` from `bindir`: fast, else
/// immediate.
fn stop_dir(bindir: &Path, node: &Path) {
    let Ok(user) = OsUser::get() else { return };
    for mode in ["fast", "immediate"] {
        let mut cmd = user.command(&bindir.join("pg_ctl"));
        cmd.arg("stop")
            .arg("-D")
            .arg(node.join("data"))
            .args(["-m", mode, "-w", "-t", "60"]);
        if run(&mut cmd, None).is_ok() {
            return;
        }
    }
}

/// Removes what `up` makes in `dir`, then `dir` if that leaves it empty.
fn remove_lab_files(dir: &Path) -> Result<()> {
    for name in NODES {
        let path = dir.join(name);
        match std::fs::remove_dir_all(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).context(|| format!("cannot remove {}", path.display()))
            }
            _ => {}
        }
    }
    for name in [state::FILE, ".gitignore"] {
        let _ = std::fs::remove_file(dir.join(name));
    }
    let _ = std::fs::remove_dir(dir);
    Ok(())
}

/// Settings of node `i`: PostgreSQL's default 16 MB segments, fsync on, named after it,
/// and a standby that reports its positions every second (for `status`).
fn node_options(i: usize) -> Options {
    Options {
        wal_segsize_mb: 16,
        fsync: true,
        ..Options::default()
    }
    .conf(format!("cluster_name = '{}'", NODES[i]))
    .conf("wal_receiver_status_interval = '1s'")
}

/// The slot on the primary that node `i` streams through when it is the standby.
fn slot_name(i: usize) -> String {
    format!("{}_slot", NODES[i])
}

/// The standby's `primary_conninfo`: the replicator over TCP, as in the seed.
fn upstream_conninfo(primary: &Cluster, password: &str, standby_name: &str) -> String {
    let port = primary.port().to_string();
    conninfo::build_plain(&[
        ("host", crate::HOST),
        ("port", &port),
        ("user", REPLICATOR),
        ("password", password),
        ("application_name", standby_name),
    ])
}

/// The seed's `pg_hba.conf` (the replicator over TCP with SCRAM, for replication and
/// SQL), the superuser [`ADMIN`] over TCP with SCRAM (the seed trusts local connections; a
/// lab on a shared machine asks for a password instead), plus the bootstrap superuser
/// through the socket by `peer` for testenv itself.
fn hba_conf(superuser: &str) -> String {
    let su = quote_hba(superuser);
    format!(
        "# Generated by testenv's lab.\n\
         # TYPE  DATABASE     USER            ADDRESS        METHOD\n\
         local   all          {su:<15}                peer\n\
         local   replication  {su:<15}                peer\n\
         host    all          {REPLICATOR:<15} 127.0.0.1/32   scram-sha-256\n\
         host    replication  {REPLICATOR:<15} 127.0.0.1/32   scram-sha-256\n\
         host    all          {ADMIN:<15} 127.0.0.1/32   scram-sha-256\n"
    )
}

fn random_hex(bytes: usize) -> Result<String> {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context(|| "cannot read /dev/urandom".to_string())?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hba_lets_the_replicator_and_the_admin_in_by_scram_only() {
        let hba = hba_conf("postgres");
        let lines: Vec<Vec<&str>> = hba
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            lines,
            [
                vec!["local", "all", "postgres", "peer"],
                vec!["local", "replication", "postgres", "peer"],
                vec!["host", "all", "replicator", "127.0.0.1/32", "scram-sha-256"],
                vec![
                    "host",
                    "replication",
                    "replicator",
                    "127.0.0.1/32",
                    "scram-sha-256"
                ],
                vec!["host", "all", "postgres", "127.0.0.1/32", "scram-sha-256"],
            ]
        );
    }

    #[test]
    fn init_sql_makes_the_users_table() {
        assert!(INIT_SQL.contains("CREATE TABLE IF NOT EXISTS users"));
        assert!(INIT_SQL.contains("username VARCHAR(50) UNIQUE NOT NULL"));
        assert!(INIT_SQL.contains("GRANT pg_monitor TO replicator"));
        assert_eq!(slot_name(1), "node2_slot");
        assert_eq!(random_hex(12).unwrap().len(), 24);
    }
}
