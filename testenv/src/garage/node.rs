//! One Garage node: its configuration, its `garage server` process and log, and the `garage`
//! CLI pointed at it.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::REGION;
use crate::error::{Error, IoContext, Result};
use crate::process::describe;

/// How long a CLI command may take.
const CLI_TIMEOUT: Duration = Duration::from_secs(20);
/// How long `json-api GetClusterHealth` may take.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);

pub(super) struct Node {
    bin: PathBuf,
    pub(super) dir: PathBuf,
    pub(super) rpc_port: u16,
    pub(super) s3_port: u16,
    /// `<64 hex digits>@127.0.0.1:<rpc port>`, once the node has started the first time.
    pub(super) id: String,
    child: Option<Child>,
}

/// What `garage json-api GetClusterHealth` says (the fields used here).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Health {
    pub(super) status: String,
    pub(super) storage_nodes: usize,
    pub(super) storage_nodes_up: usize,
    pub(super) partitions: usize,
    pub(super) partitions_all_ok: usize,
}

impl Node {
    pub(super) fn new(bin: &Path, dir: PathBuf, rpc_port: u16, s3_port: u16) -> Node {
        Node {
            bin: bin.to_path_buf(),
            dir,
            rpc_port,
            s3_port,
            id: String::new(),
            child: None,
        }
    }

    /// Writes `garage.toml` for a cluster of `nodes` nodes (the replication factor: every
    /// node keeps a copy of everything).
    pub(super) fn write_config(&self, nodes: usize, rpc_secret: &str) -> Result<()> {
        let dir = toml_string(&self.dir.to_string_lossy());
        let config = format!(
            r#"metadata_dir = "{dir}/meta"
data_dir = "{dir}/data"
db_engine = "lmdb"
replication_factor = {nodes}
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{rpc_secret}"

[s3_api]
s3_region = "{REGION}"
api_bind_addr = "127.0.0.1:{s3}"
root_domain = ".s3.garage.localhost"
"#,
            rpc = self.rpc_port,
            s3 = self.s3_port,
        );
        let path = self.config_path();
        fs::write(&path, config).context(|| format!("cannot write {}", path.display()))
    }

    /// Starts `garage server`, its output appended to `garage.log`, and leaves its pid in
    /// `garage.pid` for the watchdog.
    pub(super) fn spawn(&mut self) -> Result<()> {
        let log_path = self.log_path();
        let open_log = || {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .context(|| format!("cannot open {}", log_path.display()))
        };
        let mut cmd = self.command();
        cmd.arg("server")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(open_log()?)
            .stderr(open_log()?);
        let child = cmd
            .spawn()
            .context(|| format!("cannot start {}", describe(&cmd)))?;
        let pid = child.id();
        self.child = Some(child);
        let pid_file = self.dir.join("garage.pid");
        fs::write(&pid_file, format!("{pid}\n"))
            .context(|| format!("cannot write {}", pid_file.display()))
    }

    /// SIGKILL if it runs, and its exit reaped.
    pub(super) fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            // An error here means it had exited already; wait() reaps it either way.
            let _ = child.kill();
            child
                .wait()
                .context(|| format!("cannot wait for {}", describe(&self.command())))?;
        }
        // The watchdog must not kill whatever gets the pid next.
        let _ = fs::remove_file(self.dir.join("garage.pid"));
        Ok(())
    }

    pub(super) fn running(&self) -> bool {
        self.child.is_some()
    }

    /// How the server ended, if it has (and then it no longer counts as running).
    pub(super) fn exited(&mut self) -> Result<Option<ExitStatus>> {
        let Some(child) = self.child.as_mut() else {
            return Ok(None);
        };
        let status = child
            .try_wait()
            .context(|| format!("cannot check {}", describe(&self.command())))?;
        if status.is_some() {
            self.child = None;
        }
        Ok(status)
    }

    /// Runs `garage -c <config> <args>` and returns its stdout.
    pub(super) fn cli(&self, args: &[&str]) -> Result<String> {
        self.cli_within(CLI_TIMEOUT, args)
    }

    /// [`cli`](Node::cli), killed after `timeout`: the CLI waits for ever on a port where
    /// something that is not Garage accepts connections.
    fn cli_within(&self, timeout: Duration, args: &[&str]) -> Result<String> {
        let mut cmd = self.command();
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .context(|| format!("cannot start {}", describe(&cmd)))?;
        // Reader threads: a long answer must not block the program while we wait for it.
        let read = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut text = String::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.read_to_string(&mut text);
                }
                text
            })
        };
        let stdout = read(child.stdout.take().map(|p| Box::new(p) as _));
        let stderr = read(child.stderr.take().map(|p| Box::new(p) as _));
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child
                .try_wait()
                .context(|| format!("cannot wait for {}", describe(&cmd)))?
            {
                break Some(status);
            }
            if start.elapsed() >= timeout {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let stdout = stdout.join().unwrap_or_default();
        let stderr = stderr.join().unwrap_or_default();
        match status {
            Some(s) if s.success() => Ok(stdout),
            Some(s) => Err(Error::new(format!(
                "{} failed ({s}): {}",
                describe(&cmd),
                stderr.trim()
            ))),
            None => Err(Error::new(format!(
                "{} did not finish in {timeout:?}",
                describe(&cmd)
            ))),
        }
    }

    /// Its view of the cluster; `Ok(Err(_))` when the CLI cannot reach it (yet). The node
    /// answers at once from what it knows, so a CLI that waits longer is not reaching it.
    pub(super) fn health(&self) -> Result<Result<Health, String>> {
        let out = match self.cli_within(HEALTH_TIMEOUT, &["json-api", "GetClusterHealth"]) {
            Ok(out) => out,
            Err(e) => return Ok(Err(e.to_string())),
        };
        serde_json::from_str(&out).map(Ok).map_err(|e| {
            Error::with_source(
                format!("cannot read garage's GetClusterHealth answer: {out}"),
                e,
            )
        })
    }

    /// Has it send a request to every node, without waiting for the answers (see
    /// `Garage::kill_node`).
    pub(super) fn poke(&self) -> Option<Child> {
        self.command()
            .args(["json-api", "GetNodeInfo", r#"{"node":"*","body":null}"#])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()
    }

    /// The status code of `GET /` on its S3 port, or why there is none.
    pub(super) fn s3_status(&self) -> Result<u16, String> {
        http_status(self.s3_port)
    }

    /// Whether it could not listen on a port. Garage panics when its RPC port is taken,
    /// but only logs it and runs on when its S3 port is.
    pub(super) fn port_taken(&self) -> bool {
        fs::read_to_string(self.log_path()).is_ok_and(|log| log.contains("Address already in use"))
    }

    pub(super) fn config_path(&self) -> PathBuf {
        self.dir.join("garage.toml")
    }

    pub(super) fn log_path(&self) -> PathBuf {
        self.dir.join("garage.log")
    }

    /// The end of its log: the last 20 lines, after the panic message if there is one
    /// (Garage follows it with a long backtrace).
    pub(super) fn log_tail(&self) -> String {
        let log = fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines.len().saturating_sub(20);
        let panic = lines[..tail]
            .iter()
            .position(|l| l.starts_with("panicked at"))
            .map(|at| lines[at..(at + 2).min(tail)].join("\n") + "\n...\n")
            .unwrap_or_default();
        panic + &lines[tail..].join("\n")
    }

    /// `garage -c <config>`.
    fn command(&self) -> Command {
        let mut cmd = garage_command(&self.bin);
        cmd.arg("-c").arg(self.config_path());
        cmd
    }
}

/// `bin`, without the `GARAGE_*` variables through which the environment could point the
/// CLI at another cluster (`GARAGE_RPC_HOST`) or override the configuration.
pub(super) fn garage_command(bin: &Path) -> Command {
    let mut cmd = Command::new(bin);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("GARAGE_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// `s` inside a TOML basic string.
fn toml_string(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The status code of `GET /` on 127.0.0.1:`port`, or why there is none.
fn http_status(port: u16) -> Result<u16, String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("cannot send to {addr}: {e}"))?;
    let mut head = [0; 12];
    stream
        .read_exact(&mut head)
        .map_err(|e| format!("no answer from {addr}: {e}"))?;
    // "HTTP/1.1 403"
    std::str::from_utf8(&head)
        .ok()
        .and_then(|h| h.strip_prefix("HTTP/1.1 "))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| {
            format!(
                "{addr} answers {:?}, not HTTP",
                String::from_utf8_lossy(&head)
            )
        })
}
