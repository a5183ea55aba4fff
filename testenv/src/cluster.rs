//! One PostgreSQL server in its own temporary directory: create, start, stop, kill, drop.

use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::bin::PgBin;
use crate::error::{Error, IoContext, Result};
use crate::options::Options;
use crate::os_user::OsUser;
use crate::process::run;
use crate::{conninfo, roles, tempdir};

/// The address every cluster listens on.
pub const HOST: &str = "127.0.0.1";

/// How long `pg_ctl` may take to start or stop a server.
const PG_CTL_TIMEOUT_SECS: &str = "60";

/// A running (or stopped) PostgreSQL server owned by the test.
///
/// Its temporary directory holds `data/` (the data directory), `sock/` (the Unix socket) and
/// `server.log`. Dropping the `Cluster` stops the server immediately and removes the
/// directory, also when the test panics; a watchdog process does the same if the test
/// process is killed.
///
/// The [lab](crate::lab) keeps its servers instead: its clusters live in a directory of its
/// choosing, have no watchdog, and dropping them leaves the server running.
#[derive(Debug)]
pub struct Cluster {
    pub(crate) bin: PgBin,
    pub(crate) user: &'static OsUser,
    pub(crate) opts: Options,
    pub(crate) dir: PathBuf,
    pub(crate) port: u16,
    watchdog: Option<Child>,
    /// Whether dropping stops the server and removes `dir`.
    temporary: bool,
}

impl Cluster {
    /// Creates a cluster with `initdb`, starts it on a free port and creates the
    /// [roles](crate::roles).
    ///
    /// The server programs are [`PgBin::get`]'s.
    pub fn start(opts: Options) -> Result<Cluster> {
        let mut cluster = Cluster::new_empty(PgBin::get()?.clone(), opts)?;
        cluster.initdb(&roles::hba_conf(cluster.superuser()))?;
        cluster.start_on_free_port()?;
        cluster
            .sql(&roles::create_roles_sql())
            .map_err(|e| Error::with_source("cannot create the test roles", e))?;
        Ok(cluster)
    }

    /// A temporary directory with a socket directory and a watchdog, but no data directory
    /// yet. Returned early so that `Drop` cleans up whatever fails next.
    pub(crate) fn new_empty(bin: PgBin, opts: Options) -> Result<Cluster> {
        let user = OsUser::get()?;
        let dir = tempdir::create(user)?;
        let mut cluster = Cluster {
            bin,
            user,
            opts,
            dir,
            port: 0,
            watchdog: None,
            temporary: true,
        };
        cluster.watchdog = Some(tempdir::spawn_watchdog(&cluster.dir)?);
        cluster.create_socket_dir()?;
        Ok(cluster)
    }

    /// A cluster kept in `dir` (which must not exist yet): no watchdog, and dropping it
    /// leaves the server running and the directory in place. `dir`'s parent must be
    /// reachable by the server's OS user.
    pub(crate) fn new_kept(bin: PgBin, opts: Options, dir: PathBuf) -> Result<Cluster> {
        let user = OsUser::get()?;
        std::fs::create_dir(&dir).context(|| format!("cannot create {}", dir.display()))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .context(|| format!("cannot chmod {}", dir.display()))?;
        user.chown(&dir)?;
        let cluster = Cluster::open_kept(bin, opts, dir, 0)?;
        cluster.create_socket_dir()?;
        Ok(cluster)
    }

    /// The kept cluster in `dir` (made by [`new_kept`](Self::new_kept)) that listens, or
    /// listened, on `port`.
    pub(crate) fn open_kept(bin: PgBin, opts: Options, dir: PathBuf, port: u16) -> Result<Cluster> {
        Ok(Cluster {
            bin,
            user: OsUser::get()?,
            opts,
            dir,
            port,
            watchdog: None,
            temporary: false,
        })
    }

    fn create_socket_dir(&self) -> Result<()> {
        let sock = self.socket_dir();
        std::fs::create_dir(&sock).context(|| format!("cannot create {}", sock.display()))?;
        self.user.chown(&sock)
    }

    /// `initdb`, then `pg_hba.conf` set to `hba` and `postgresql.conf` made to include the
    /// generated `testenv.conf`.
    pub(crate) fn initdb(&self, hba: &str) -> Result<()> {
        let mut cmd = self.command(&self.bin.server("initdb"));
        cmd.arg("-D")
            .arg(self.data_dir())
            .args([
                "-U",
                self.superuser(),
                "--auth=trust",
                "--no-locale",
                "-E",
                "UTF8",
            ])
            .arg(format!("--wal-segsize={}", self.opts.wal_segsize_mb));
        if self.opts.group_access {
            cmd.arg("-g");
        }
        if !self.opts.fsync {
            cmd.arg("--no-sync");
        }
        run(&mut cmd, None)?;
        self.write_file("pg_hba.conf", hba)?;
        let conf = self.data_dir().join("postgresql.conf");
        let mut text =
            std::fs::read_to_string(&conf).context(|| format!("cannot read {}", conf.display()))?;
        text.push_str("\n# Added by testenv: its settings, rewritten on each start.\ninclude 'testenv.conf'\n");
        self.write_file("postgresql.conf", &text)
    }

    /// Picks a free port, writes `testenv.conf` and starts; a port taken between picking
    /// and binding means another pick.
    pub(crate) fn start_on_free_port(&mut self) -> Result<()> {
        let mut last = None;
        for _ in 0..5 {
            self.port = free_port()?;
            self.write_file("testenv.conf", &self.testenv_conf())?;
            match self.pg_ctl_start() {
                Ok(()) => return Ok(()),
                Err((e, log)) if log.contains("Address already in use") => last = Some(e),
                Err((e, _)) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::new("no free port found")))
    }

    /// Writes `testenv.conf` for `port` and starts there; for a data directory that came
    /// from another cluster (whose `testenv.conf` names that one's port and socket).
    pub(crate) fn start_on_port(&mut self, port: u16) -> Result<()> {
        self.port = port;
        self.write_file("testenv.conf", &self.testenv_conf())?;
        self.pg_ctl_start().map_err(|(e, log)| {
            if log.contains("Address already in use") {
                Error::new(format!(
                    "port {port} is taken by another program; the server could not start"
                ))
            } else {
                e
            }
        })
    }

    /// Starts the server again after [`stop`](Self::stop) or [`kill`](Self::kill), on the
    /// same port. After a kill the old server's processes may hold the lock file, the shared
    /// memory or the port for a moment, so this retries for up to 30 s.
    pub fn start_again(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.pg_ctl_start() {
                Ok(()) => return Ok(()),
                Err((e, log)) => {
                    let transient = [
                        "pre-existing shared memory block",
                        "Address already in use",
                        "lock file \"postmaster.pid\" already exists",
                    ]
                    .iter()
                    .any(|m| log.contains(m));
                    if !transient || Instant::now() >= deadline {
                        return Err(e);
                    }
                    std::thread::sleep(Duration::from_millis(250));
                }
            }
        }
    }

    /// [`stop`](Self::stop) then [`start_again`](Self::start_again).
    pub fn restart(&self) -> Result<()> {
        self.stop()?;
        self.start_again()
    }

    /// `pg_ctl start -w`; on failure also returns what the server logged meanwhile.
    fn pg_ctl_start(&self) -> std::result::Result<(), (Error, String)> {
        let log_before = self.log().len();
        let mut cmd = self.command(&self.bin.server("pg_ctl"));
        cmd.arg("start")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_path())
            .args(["-w", "-t", PG_CTL_TIMEOUT_SECS]);
        run(&mut cmd, None).map(|_| ()).map_err(|e| {
            let log = self.log();
            let new = log.get(log_before..).unwrap_or(&log).to_string();
            let e = Error::new(format!("{e}\nserver log:\n{}", new.trim_end()));
            (e, new)
        })
    }

    /// Fast shutdown (`pg_ctl stop -m fast -w`).
    pub fn stop(&self) -> Result<()> {
        let mut cmd = self.command(&self.bin.server("pg_ctl"));
        cmd.arg("stop").arg("-D").arg(self.data_dir()).args([
            "-m",
            "fast",
            "-w",
            "-t",
            PG_CTL_TIMEOUT_SECS,
        ]);
        run(&mut cmd, None).map(|_| ())
    }

    /// SIGKILLs the postmaster (a crash) and waits until it is gone. Its children notice
    /// and exit on their own; [`start_again`](Self::start_again) runs crash recovery.
    pub fn kill(&self) -> Result<()> {
        let pid = self.postmaster_pid()?;
        run(Command::new("kill").args(["-9", &pid.to_string()]), None)?;
        crate::wait_for(
            &format!("postmaster {pid} to exit"),
            Duration::from_secs(10),
            || !process_alive(pid),
        )?;
        // The orphaned postmaster's parent is PID 1, which may take a while to reap it, and
        // until then a new postmaster sees the old pid "alive" and refuses the lock file.
        let _ = crate::wait_for(
            "the killed postmaster to be reaped",
            Duration::from_secs(10),
            || !Path::new(&format!("/proc/{pid}")).exists(),
        );
        Ok(())
    }

    /// Whether the server is running (`pg_ctl status`).
    pub fn is_running(&self) -> bool {
        let mut cmd = self.command(&self.bin.server("pg_ctl"));
        cmd.arg("status").arg("-D").arg(self.data_dir());
        run(&mut cmd, None).is_ok()
    }

    /// The postmaster's pid, from the first line of `postmaster.pid`.
    pub fn postmaster_pid(&self) -> Result<u32> {
        let path = self.data_dir().join("postmaster.pid");
        let text = std::fs::read_to_string(&path)
            .context(|| format!("cannot read {} (is the server running?)", path.display()))?;
        text.lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| Error::new(format!("no pid in {}", path.display())))
    }

    /// A command running `program` as the server's OS user, in the cluster's temporary
    /// directory, with no `PG*` variables inherited.
    pub(crate) fn command(&self, program: &Path) -> Command {
        let mut cmd = self.user.command(program);
        // HOME too: libpq looks for ~/.pgpass, and root's home is not readable.
        cmd.current_dir(&self.dir).env("HOME", &self.dir);
        cmd
    }

    /// A command running the client program `name` (`pg_receivewal`, `pg_waldump`, ...,
    /// found by [`PgBin::tool`]) like testenv runs its own: as [`os_user`](Self::os_user),
    /// in the cluster's temporary directory. Directories it writes to must be writable by
    /// that user; see [`scratch_dir`](Self::scratch_dir).
    pub fn tool_command(&self, name: &str) -> Result<Command> {
        Ok(self.command(&self.bin.tool(name)?))
    }

    /// Creates `name` inside the cluster's temporary directory, owned by the server's OS
    /// user, and removed with the cluster.
    pub fn scratch_dir(&self, name: &str) -> Result<PathBuf> {
        let path = self.dir.join(name);
        std::fs::create_dir_all(&path).context(|| format!("cannot create {}", path.display()))?;
        self.user.chown(&path)?;
        Ok(path)
    }

    /// Writes a file in the data directory, owned by the server's OS user.
    pub(crate) fn write_file(&self, name: &str, text: &str) -> Result<()> {
        let path = self.data_dir().join(name);
        std::fs::write(&path, text).context(|| format!("cannot write {}", path.display()))?;
        self.user.chown(&path)
    }

    fn testenv_conf(&self) -> String {
        let o = &self.opts;
        let mut conf = format!(
            "# Generated by testenv on each start.\n\
             port = {port}\n\
             listen_addresses = '{HOST}'\n\
             unix_socket_directories = {sock}\n\
             wal_level = replica\n\
             max_wal_senders = 10\n\
             max_replication_slots = 10\n\
             log_replication_commands = on\n\
             hot_standby = on\n\
             fsync = {fsync}\n\
             wal_keep_size = '{keep}MB'\n\
             logging_collector = off\n\
             log_line_prefix = '%m [%p] %q%u@%d '\n\
             shared_buffers = '16MB'\n\
             max_connections = 40\n",
            port = self.port,
            sock = roles::quote_literal(&self.socket_dir().to_string_lossy()),
            fsync = if o.fsync { "on" } else { "off" },
            keep = o.wal_keep_size_mb,
        );
        for line in &o.extra_conf {
            conf.push_str(line);
            conf.push('\n');
        }
        conf
    }

    /// The TCP port (on [`host`](Self::host)).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Always `"127.0.0.1"`.
    pub fn host(&self) -> &'static str {
        HOST
    }

    /// The directory holding the Unix socket `.s.PGSQL.<port>`.
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.join("sock")
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// `data_dir()/pg_wal`.
    pub fn pg_wal_dir(&self) -> PathBuf {
        self.data_dir().join("pg_wal")
    }

    /// The cluster's directory, holding `data/`, `sock/` and `server.log` (for a test
    /// cluster, a temporary one removed on drop).
    pub fn temp_dir(&self) -> &Path {
        &self.dir
    }

    /// The server's major version.
    pub fn version(&self) -> u32 {
        self.bin.version()
    }

    /// The programs in use.
    pub fn bin(&self) -> &PgBin {
        &self.bin
    }

    /// The bootstrap superuser: named like the OS user running the server, `trust` auth.
    pub fn superuser(&self) -> &str {
        self.user.name()
    }

    /// The OS user the server and client tools run as.
    pub fn os_user(&self) -> &'static OsUser {
        self.user
    }

    /// The options the cluster was created with.
    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// `key='value'` connection string over TCP to database `postgres`.
    pub fn conninfo(&self, user: &str, password: Option<&str>) -> String {
        let port = self.port.to_string();
        let mut pairs = vec![
            ("host", HOST),
            ("port", &port),
            ("user", user),
            ("dbname", "postgres"),
        ];
        if let Some(pw) = password {
            pairs.push(("password", pw));
        }
        conninfo::build(&pairs)
    }

    /// `key='value'` connection string over the Unix socket to database `postgres`.
    pub fn socket_conninfo(&self, user: &str) -> String {
        let port = self.port.to_string();
        let sock = self.socket_dir();
        let sock = sock.to_string_lossy();
        conninfo::build(&[
            ("host", &sock),
            ("port", &port),
            ("user", user),
            ("dbname", "postgres"),
        ])
    }

    /// Path of the server log (`pg_ctl -l`).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// Everything the server has logged so far (empty if nothing yet).
    pub fn log(&self) -> String {
        std::fs::read(self.log_path())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !self.temporary {
            return;
        }
        if self.data_dir().join("postmaster.pid").exists() {
            let mut cmd = self.command(&self.bin.server("pg_ctl"));
            cmd.arg("stop").arg("-D").arg(self.data_dir()).args([
                "-m",
                "immediate",
                "-w",
                "-t",
                "30",
            ]);
            let _ = run(&mut cmd, None);
            if let Ok(pid) = self.postmaster_pid() {
                if process_alive(pid) {
                    let _ = run(Command::new("kill").args(["-9", &pid.to_string()]), None);
                }
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("testenv: cannot remove {}: {e}", self.dir.display());
        }
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

/// A port nobody listened on a moment ago.
pub(crate) fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context(|| "cannot bind 127.0.0.1:0 to pick a port".to_string())?;
    Ok(listener
        .local_addr()
        .context(|| "cannot read the picked port".to_string())?
        .port())
}

/// Whether `pid` exists and is not a zombie (a zombie is dead, just not yet reaped).
pub(crate) fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "pid (comm) S ...": the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
            .unwrap_or(true),
        Err(_) => false,
    }
}
