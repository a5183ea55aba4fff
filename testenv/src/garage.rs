//! A real Garage object store (S3-compatible, <https://garagehq.deuxfleurs.fr>) of one or
//! three nodes on loopback.
//!
//! [`Garage::start`] writes each node's configuration into a private temporary directory,
//! starts `garage server` for each, joins the nodes into one cluster with one layout, and
//! creates an access key and a bucket that the key may read, write and own. Everything after
//! the servers' start goes through the `garage` CLI, which reaches a node over its RPC port
//! with the cluster's secret (no admin API, no admin token). The CLI's `json-api` command
//! gives the key and the cluster's health as JSON, so nothing depends on its tables' layout.
//!
//! The nodes are this process's children and run as its user (Garage, unlike PostgreSQL,
//! does not mind root). Dropping a `Garage` kills them and deletes the directory; a watchdog
//! does the same if the test process dies without unwinding.

mod node;

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use serde::Deserialize;

use self::node::{garage_command, Node};
use crate::cluster::free_port;
use crate::error::{Error, IoContext, Result};
use crate::process::run;
use crate::tempdir;

/// Names the `garage` binary to use, ahead of `PATH` and `~/.cargo/bin`.
pub const GARAGE_BIN_VAR: &str = "GARAGE_BIN";

/// How to install the `garage` binary that [`Garage::binary`] looks for.
pub const GARAGE_INSTALL: &str =
    "cargo install garage --locked --no-default-features --features bundled-libs,lmdb";

/// The S3 region the nodes are configured with.
const REGION: &str = "garage";
/// The bucket [`Garage::start`] creates.
const BUCKET: &str = "pgwal";
/// The name of the access key [`Garage::start`] creates.
const KEY_NAME: &str = "testenv";
/// How long each step of a start may take: a node coming up, the cluster settling.
const TIMEOUT: Duration = Duration::from_secs(60);

/// A running Garage cluster of 1 node (replication factor 1) or 3 (replication factor 3,
/// consistency mode "consistent"), with one bucket and one key allowed to read, write and
/// own it.
///
/// ```no_run
/// let garage = testenv::Garage::start(1)?;
/// let mut cmd = std::process::Command::new("my-archiver");
/// cmd.envs(garage.env()).arg(garage.url("wal/"));
/// # Ok::<(), testenv::Error>(())
/// ```
pub struct Garage {
    dir: PathBuf,
    nodes: Vec<Node>,
    rpc_secret: String,
    key_id: String,
    secret_key: String,
    watchdog: Option<Child>,
}

impl Garage {
    /// The `garage` program: `$GARAGE_BIN`, else `garage` on `PATH`, else
    /// `$CARGO_HOME/bin/garage`, else `~/.cargo/bin/garage`.
    pub fn binary() -> Option<PathBuf> {
        if let Some(bin) = std::env::var_os(GARAGE_BIN_VAR) {
            return Some(PathBuf::from(bin)).filter(|p| p.is_file());
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        let cargo_home = std::env::var_os("CARGO_HOME").map(PathBuf::from);
        let home_cargo = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo"));
        std::env::split_paths(&path)
            .chain(cargo_home.into_iter().map(|d| d.join("bin")))
            .chain(home_cargo.into_iter().map(|d| d.join("bin")))
            .map(|d| d.join("garage"))
            .find(|p| p.is_file())
    }

    /// Starts a cluster of `nodes` nodes (1 or 3), each on free ports of 127.0.0.1, and
    /// returns once every node answers S3 requests and sees the others, with the bucket and
    /// the key created. Fails, saying how to install it, when there is no `garage` binary.
    pub fn start(nodes: usize) -> Result<Garage> {
        if nodes != 1 && nodes != 3 {
            return Err(Error::new(format!(
                "a garage cluster here has 1 or 3 nodes, not {nodes}"
            )));
        }
        let bin = Garage::binary().ok_or_else(|| {
            Error::new(format!(
                "no garage program (${GARAGE_BIN_VAR}, PATH, ~/.cargo/bin); \
                 install it with: {GARAGE_INSTALL}"
            ))
        })?;
        check_version(&bin)?;
        let mut garage = Garage {
            dir: tempdir::create_private("testenv-garage")?,
            nodes: Vec::new(),
            rpc_secret: random_hex(32)?,
            key_id: String::new(),
            secret_key: String::new(),
            watchdog: None,
        };
        // From here on, Drop cleans up whatever fails.
        garage.watchdog = Some(tempdir::spawn_watchdog_script(WATCHDOG, &garage.dir)?);
        let mut taken = HashSet::new();
        for i in 0..nodes {
            let dir = garage.dir.join(format!("node{i}"));
            fs::create_dir(&dir).context(|| format!("cannot create {}", dir.display()))?;
            let (rpc, s3) = (pick_port(&mut taken)?, pick_port(&mut taken)?);
            garage.nodes.push(Node::new(&bin, dir, rpc, s3));
        }
        for i in 0..nodes {
            garage.first_start(i, &mut taken)?;
        }
        garage.form_cluster()?;
        garage.create_key_and_bucket()?;
        Ok(garage)
    }

    /// `http://127.0.0.1:<port>`: node 0's S3 API.
    pub fn endpoint(&self) -> String {
        self.endpoint_of(0)
    }

    /// Node `i`'s S3 API, `http://127.0.0.1:<port>`.
    pub fn endpoint_of(&self, i: usize) -> String {
        format!("http://{}:{}", Ipv4Addr::LOCALHOST, self.nodes[i].s3_port)
    }

    /// The bucket created at the start (`pgwal`).
    pub fn bucket(&self) -> &str {
        BUCKET
    }

    /// The access key allowed to read, write and own [`bucket`](Garage::bucket).
    pub fn access_key_id(&self) -> &str {
        &self.key_id
    }

    /// The secret of [`access_key_id`](Garage::access_key_id).
    pub fn secret_access_key(&self) -> &str {
        &self.secret_key
    }

    /// The S3 region the cluster answers for (`garage`).
    pub fn region(&self) -> &str {
        REGION
    }

    /// The environment that `object_store`'s `AmazonS3Builder::from_env` (and the AWS tools)
    /// read: the key, the region, node 0's endpoint, and plain HTTP allowed.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", self.key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_key.clone()),
            ("AWS_REGION", REGION.to_string()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ALLOW_HTTP", "true".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// `s3://<bucket>/<prefix>`.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{BUCKET}/{prefix}")
    }

    /// How many nodes the cluster has.
    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }

    /// The private directory that holds each node's `garage.toml`, data and `garage.log`
    /// (in `node<i>/`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs the `garage` CLI against node `i` (`garage -c <its config> <args>`) and returns
    /// its stdout; for instance `["json-api", "GetClusterHealth"]` or `["bucket", "info",
    /// "pgwal"]`.
    pub fn cli(&self, i: usize, args: &[&str]) -> Result<String> {
        self.nodes[i].cli(args)
    }

    /// Kills node `i` (SIGKILL: a crash, not a shutdown), waits for it to be gone, and
    /// waits until the other running nodes see that it is.
    ///
    /// A node finds that a peer's connection broke only when it writes to it a second time
    /// after the peer died (the first write still succeeds): until then its requests to the
    /// peer wait, for the next ping (every 15 s). So each round of the wait has every
    /// running node send one more request to every node, without waiting for the answers.
    pub fn kill_node(&mut self, i: usize) -> Result<()> {
        self.nodes[i].kill()?;
        let mut pokes = Vec::new();
        let settled = self.wait("the other garage nodes to see the node down", |g| {
            pokes.extend(
                g.nodes
                    .iter()
                    .filter(|n| n.running())
                    .filter_map(Node::poke),
            );
            g.settled()
        });
        for mut p in pokes {
            let _ = p.kill();
            let _ = p.wait();
        }
        settled
    }

    /// Starts node `i` again, with its configuration and data, and waits until its S3 API
    /// answers and it and every other running node see each other.
    pub fn start_node(&mut self, i: usize) -> Result<()> {
        if self.nodes[i].running() {
            return Err(Error::new(format!("garage node {i} is running already")));
        }
        self.nodes[i].spawn()?;
        self.wait_up(i)?;
        self.reconnect()?;
        self.wait_settled()
    }

    /// Kills every node (SIGKILL, as [`kill_node`](Garage::kill_node) does): the whole store
    /// is down.
    pub fn stop_all(&mut self) -> Result<()> {
        for node in &mut self.nodes {
            node.kill()?;
        }
        Ok(())
    }

    /// Starts every node that is not running and waits until the cluster is whole again: the
    /// nodes see each other, every S3 API answers, and the CLI can read the bucket.
    pub fn start_all(&mut self) -> Result<()> {
        let stopped: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| !self.nodes[i].running())
            .collect();
        for &i in &stopped {
            self.nodes[i].spawn()?;
        }
        for &i in &stopped {
            self.wait_up(i)?;
        }
        self.reconnect()?;
        self.wait_settled()?;
        self.wait("the bucket to be readable through node 0", |g| {
            Ok(g.cli(0, &["bucket", "info", BUCKET])
                .map(drop)
                .map_err(|e| e.to_string()))
        })
    }

    // ---- forming the cluster ----

    /// Starts node `i` for the first time. A port taken by someone else between
    /// [`free_port`] and the node's bind is picked again (the other nodes do not know its
    /// ports yet).
    fn first_start(&mut self, i: usize, taken: &mut HashSet<u16>) -> Result<()> {
        for attempt in 1.. {
            self.nodes[i].write_config(self.nodes.len(), &self.rpc_secret)?;
            self.nodes[i].spawn()?;
            let up = self.wait_up(i);
            let node = &mut self.nodes[i];
            if !node.port_taken() || attempt == 5 {
                up?;
                break;
            }
            node.kill()?;
            node.rpc_port = pick_port(taken)?;
            node.s3_port = pick_port(taken)?;
            // The next attempt's log starts clean: "in use" will be about it alone.
            let _ = fs::remove_file(node.log_path());
        }
        let id = self.cli(i, &["node", "id", "-q"])?;
        self.nodes[i].id = id.trim().to_string();
        Ok(())
    }

    /// Connects node 0 to the others, gives each 1 GB in zone `dc1`, applies the layout and
    /// waits for every node to see a healthy cluster.
    fn form_cluster(&mut self) -> Result<()> {
        for i in 1..self.nodes.len() {
            self.cli(0, &["node", "connect", &self.nodes[i].id])?;
        }
        let mut assign = vec!["layout", "assign", "-z", "dc1", "-c", "1G"];
        let ids: Vec<String> = self.nodes.iter().map(|n| short_id(&n.id)).collect();
        assign.extend(ids.iter().map(String::as_str));
        // Assigning a role to a node that node 0 does not know yet fails: retry until the
        // connections are up.
        self.wait("node 0 to know every node (garage layout assign)", |g| {
            Ok(g.cli(0, &assign).map(drop).map_err(|e| e.to_string()))
        })?;
        self.cli(0, &["layout", "apply", "--version", "1"])?;
        self.wait_settled()
    }

    /// Has every running node connect to every other. A node whose connection to a peer
    /// broke retries only every 30 s (and a node that starts tries its peers once, maybe
    /// before they listen): without this, a restarted node rejoins after up to a minute.
    fn reconnect(&self) -> Result<()> {
        for from in self.nodes.iter().filter(|n| n.running()) {
            for to in self.nodes.iter().filter(|n| n.running()) {
                if from.id != to.id {
                    from.cli(&["node", "connect", &to.id])?;
                }
            }
        }
        Ok(())
    }

    /// Creates the key (`json-api CreateKey`, whose answer is JSON) and the bucket, and
    /// allows the key to read, write and own it.
    fn create_key_and_bucket(&mut self) -> Result<()> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct CreatedKey {
            access_key_id: String,
            secret_access_key: String,
        }
        let payload = format!(r#"{{"name":"{KEY_NAME}"}}"#);
        let out = self.cli(0, &["json-api", "CreateKey", &payload])?;
        let key: CreatedKey = serde_json::from_str(&out).map_err(|e| {
            Error::with_source(format!("cannot read garage's CreateKey answer: {out}"), e)
        })?;
        self.key_id = key.access_key_id;
        self.secret_key = key.secret_access_key;
        self.cli(0, &["bucket", "create", BUCKET])?;
        let allow = ["bucket", "allow", "--read", "--write", "--owner"];
        self.cli(0, &[&allow[..], &[BUCKET, "--key", &self.key_id]].concat())?;
        Ok(())
    }

    // ---- waiting ----

    /// Waits until node `i` answers the CLI (it has made its node key and listens for RPC)
    /// and HTTP requests on its S3 port (any status: an unsigned request gets 403).
    fn wait_up(&mut self, i: usize) -> Result<()> {
        self.wait(&format!("garage node {i} to answer"), |g| {
            let node = &g.nodes[i];
            // Then the RPC port's owner may answer the CLI, or the S3 port's answer HTTP.
            if node.port_taken() {
                return Err(Error::new(format!(
                    "garage node {i} cannot listen on its ports; the end of {}:\n{}",
                    node.log_path().display(),
                    node.log_tail()
                )));
            }
            if let Err(why) = node.health()? {
                return Ok(Err(why));
            }
            Ok(node.s3_status().map(drop))
        })
    }

    /// Waits until every running node sees every running node; once all run, until each
    /// finds the cluster healthy (every partition has all its nodes).
    fn wait_settled(&mut self) -> Result<()> {
        self.wait("the garage nodes to see each other", |g| g.settled())
    }

    /// Whether every running node sees just the running nodes up, and, when all run, a
    /// healthy cluster; `Ok(Err(why))` when not.
    fn settled(&self) -> Result<Result<(), String>> {
        let n = self.nodes.len();
        let running = self.nodes.iter().filter(|n| n.running()).count();
        for (i, node) in self.nodes.iter().enumerate().filter(|(_, n)| n.running()) {
            let h = match node.health()? {
                Ok(h) => h,
                Err(why) => return Ok(Err(format!("node {i}: {why}"))),
            };
            if h.storage_nodes != n
                || h.storage_nodes_up != running
                || (running == n && (h.status != "healthy" || h.partitions_all_ok != h.partitions))
            {
                return Ok(Err(format!("node {i} reports {h:?}")));
            }
        }
        Ok(Ok(()))
    }

    /// Calls `step` every 100 ms until it returns `Ok(Ok(_))`; `Ok(Err(why))` means not yet,
    /// an `Err` fails at once, and so does a node that exited. The timeout's error says the
    /// last `why`.
    fn wait<T>(
        &mut self,
        what: &str,
        mut step: impl FnMut(&mut Garage) -> Result<Result<T, String>>,
    ) -> Result<T> {
        let start = Instant::now();
        loop {
            self.check_running()?;
            let why = match step(self)? {
                Ok(v) => return Ok(v),
                Err(why) => why,
            };
            if start.elapsed() >= TIMEOUT {
                return Err(Error::new(format!(
                    "timed out after {TIMEOUT:?}: waiting for {what}; last: {why}"
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Fails if a node this `Garage` started has exited, with the end of its log.
    fn check_running(&mut self) -> Result<()> {
        for (i, node) in self.nodes.iter_mut().enumerate() {
            if let Some(status) = node.exited()? {
                return Err(Error::new(format!(
                    "garage node {i} exited ({status}); the end of {}:\n{}",
                    node.log_path().display(),
                    node.log_tail()
                )));
            }
        }
        Ok(())
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.kill();
        }
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            eprintln!("testenv: cannot remove {}: {e}", self.dir.display());
        }
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

/// What the watchdog runs (see `tempdir::spawn_watchdog_script`): once we are gone but the
/// directory is not, it kills the nodes whose pids we left and removes the directory.
const WATCHDOG: &str = r#"
while kill -0 "$1" 2>/dev/null && [ -d "$2" ]; do sleep 1; done
[ -d "$2" ] || exit 0
for f in "$2"/*/garage.pid; do
  [ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null
done
sleep 1
rm -rf "$2"
"#;

/// Fails unless `bin` is Garage 2 or later (whose CLI has `json-api` and the layout options
/// used here).
fn check_version(bin: &Path) -> Result<()> {
    let out = run(garage_command(bin).arg("--version"), None)?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "garage v2.5.0 [features: ...]" from a release, "garage cargo:2.5.0 [...]" from
    // `cargo install`.
    let major = text
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.find(|c: char| c.is_ascii_digit()).map(|at| &v[at..]))
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse::<u32>().ok());
    match major {
        Some(m) if m >= 2 => Ok(()),
        _ => Err(Error::new(format!(
            "{} is not Garage 2 or later ({}); install it with: {GARAGE_INSTALL}",
            bin.display(),
            text.trim()
        ))),
    }
}

/// A free port not handed out before in this cluster.
fn pick_port(taken: &mut HashSet<u16>) -> Result<u16> {
    for _ in 0..100 {
        let port = free_port()?;
        if taken.insert(port) {
            return Ok(port);
        }
    }
    Err(Error::new("no free port found"))
}

/// `n` random bytes from `/dev/urandom`, in hex.
fn random_hex(n: usize) -> Result<String> {
    let mut bytes = vec![0; n];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context(|| "cannot read /dev/urandom".to_string())?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The node id part of `<id>@<addr>`, which `garage layout assign` takes.
fn short_id(full: &str) -> String {
    full.split('@').next().unwrap_or(full).to_string()
}
