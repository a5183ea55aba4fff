//! pgwal-recv archiving to an object store beside archiving to a local directory, on the same
//! WAL, alternating; prints a markdown table of medians per fsync mode:
//! - local: `-D DIR -S SLOT -n -E END`;
//! - store: `-D s3://pgwal/PREFIX --spool DIR --upload-jobs N -S SLOT -n -E END`, for each N
//!   of `--jobs` (default `2,4`; 2 is pgwal-recv's default), into a real Garage store of one
//!   node on loopback (testenv's configuration, otherwise Garage's defaults: 1 MiB blocks,
//!   each compressed with zstd level 1, no fsync);
//!
//! first with `--no-sync`, then with the default fsync (`--sync no|yes|both`, default both);
//! every run with `-Z` as `--compress none|gzip|lz4|zstd` says (default none).
//!
//! Every run archives the same ≥ `--wal-mb` MB from a slot of its own (all made before the
//! WAL is written) up to the same end position, as the cluster's OS user under
//! `/usr/bin/time` (wall, CPU, peak RSS); a store run ends once the end position is received
//! and every segment is uploaded. Garage's own CPU over each run is read from /proc. After
//! each run the expected number of complete segments is checked: in the directory, or in the
//! store under the run's own prefix with none left in the spool.
//!
//! Garage stores a block of a given hash once: the same WAL uploaded again is hashed and
//! compressed again but not written again, which no real archive sees. So each store run
//! gets a fresh Garage, started untimed (`--garage fresh`, the default); `--garage shared`
//! uses one for every run, which shows what Garage's writes cost.
//!
//! Use `benches/store_side_by_side.sh`, which builds the release binaries first. Not a test:
//! run it by hand on a quiet machine.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjPath;
use object_store::ObjectStore;
use pgwire_repl::Lsn;
use pgwire_repl_benches::archiving::server;
use pgwire_repl_benches::timing::{
    machine, median, num, or_exit, parse_args, read_stats, time_into, Run,
};
use testenv::{Cluster, Garage};

/// The server's segment size ([`server`]).
const SEGMENT: u64 = 16 << 20;
/// pgwal-recv's `--upload-jobs` default.
const DEFAULT_UPLOAD_JOBS: usize = 2;

struct Args {
    pgwal_recv: PathBuf,
    rounds: usize,
    wal_mb: u64,
    /// The `--upload-jobs` values, one store variant each.
    jobs: Vec<usize>,
    /// The modes to run, `false` being `--no-sync`.
    syncs: Vec<bool>,
    /// A fresh Garage for each store run (else one for all).
    fresh_garage: bool,
    /// `-Z` for every run (local and store alike); `none` by default.
    compress: String,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        pgwal_recv: PathBuf::new(),
        rounds: 3,
        wal_mb: 1100,
        jobs: vec![DEFAULT_UPLOAD_JOBS, 4],
        syncs: vec![false, true],
        fresh_garage: true,
        compress: "none".into(),
    };
    a.pgwal_recv = parse_args("benches/store_side_by_side.sh", &mut |k, v| {
        match k {
            "--rounds" => a.rounds = num(k, v)?.max(1) as usize,
            "--wal-mb" => a.wal_mb = num(k, v)?,
            "--jobs" => {
                a.jobs = v
                    .split(',')
                    .map(|j| match num(k, j)? {
                        n @ 1..=64 => Ok(n as usize),
                        _ => Err(format!("{k}: each value is 1 to 64, not {j}")),
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--sync" => {
                a.syncs = match v {
                    "no" => vec![false],
                    "yes" => vec![true],
                    "both" => vec![false, true],
                    _ => return Err(format!("{k} takes no, yes or both, not {v}")),
                }
            }
            "--compress" if ["none", "gzip", "lz4", "zstd"].contains(&v) => {
                a.compress = v.to_owned()
            }
            "--garage" => {
                a.fresh_garage = match v {
                    "fresh" => true,
                    "shared" => false,
                    _ => return Err(format!("{k} takes fresh or shared, not {v}")),
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(a)
}

#[derive(Clone, Copy, PartialEq)]
enum Target {
    Local,
    /// The object store, with this many upload jobs.
    Store(usize),
}

impl Target {
    fn name(self) -> String {
        match self {
            Target::Local => "local directory".into(),
            Target::Store(j) if j == DEFAULT_UPLOAD_JOBS => {
                format!("store, --upload-jobs {j} (default)")
            }
            Target::Store(j) => format!("store, --upload-jobs {j}"),
        }
    }
}

/// One timed run.
struct Sample {
    sync: bool,
    target: Target,
    round: usize,
    run: Run,
    /// Garage's CPU seconds (user + system) during the run.
    garage_cpu: Option<f64>,
}

/// What every run shares.
struct Bench<'a> {
    a: &'a Args,
    pg: &'a Cluster,
    conninfo: String,
    end: String,
    /// Complete segments every run must leave.
    segments: u64,
    /// The Garage of every store run, with `--garage shared`.
    shared: Option<Garage>,
    /// For listing what a store run left.
    rt: tokio::runtime::Runtime,
    /// Clock ticks per second, the unit of /proc/PID/stat's times.
    clk_tck: f64,
}

impl Bench<'_> {
    /// Archives from `slot` to the end into `target`, as the cluster's OS user under
    /// `/usr/bin/time`; checks what it left, removes the directory or spool, and returns
    /// the figures. `tag` names the run's directory, stats file and store prefix.
    fn run(&self, target: Target, slot: &str, sync: bool, tag: &str) -> (Run, Option<f64>) {
        let fresh;
        let garage = match (target, &self.shared) {
            (Target::Local, _) => None,
            (Target::Store(_), Some(g)) => Some(g),
            (Target::Store(_), None) => {
                fresh = Garage::start(1).expect("a Garage store");
                Some(&fresh)
            }
        };
        // Nothing dirty left by the WAL load, the previous run or the store's start:
        // otherwise the kernel throttles whichever writer comes next.
        settle();
        let dir = self.pg.scratch_dir(tag).unwrap();
        let stats = self.pg.scratch_dir("stats").unwrap().join(tag);
        let mut cmd = self.pg.os_user().command(Path::new("/usr/bin/time"));
        time_into(&mut cmd, &stats);
        cmd.arg(&self.a.pgwal_recv);
        match (target, garage) {
            (Target::Store(jobs), Some(g)) => {
                // /usr/bin/time, setpriv and runuser pass the environment on: a run without
                // it would fail, as it would have no endpoint and no key.
                cmd.envs(g.env())
                    .args(["-D", &g.url(tag), "--spool"])
                    .arg(&dir)
                    .args(["--upload-jobs", &jobs.to_string()]);
            }
            _ => {
                cmd.arg("-D").arg(&dir);
            }
        }
        cmd.args(["-S", slot, "-n", "-E", &self.end, "-d", &self.conninfo])
            .args(["-Z", &self.a.compress]);
        if !sync {
            cmd.arg("--no-sync");
        }
        let before = garage.and_then(|g| self.garage_cpu(g));
        let status = cmd
            .stdout(Stdio::null())
            .status()
            .expect("run /usr/bin/time");
        let after = garage.and_then(|g| self.garage_cpu(g));
        assert!(status.success(), "{} ({tag}) failed", target.name());
        let run = read_stats(&stats);
        let left = complete_segments(&dir);
        match garage {
            None => assert_eq!(
                left,
                self.segments,
                "complete segments in {}",
                dir.display()
            ),
            Some(g) => {
                assert_eq!(
                    left,
                    0,
                    "complete segments left in the spool {}",
                    dir.display()
                );
                let (n, bytes) = self.stored(g, tag);
                assert_eq!(n, self.segments, "segments stored under {tag}/");
                if self.a.compress == "none" {
                    assert_eq!(bytes, n * SEGMENT, "bytes stored under {tag}/");
                }
            }
        }
        // Deleted at once: kept, the files fill the page cache and every later run pays for
        // reclaiming it. The store's objects stay: a fresh Garage goes with its directory,
        // and a shared one holds each block once.
        std::fs::remove_dir_all(&dir).unwrap();
        let garage_cpu = before.zip(after).map(|(b, a)| a - b);
        (run, garage_cpu)
    }

    /// Garage's CPU seconds so far (user + system, all threads), from /proc; `None` if its
    /// pid is not to be found.
    fn garage_cpu(&self, g: &Garage) -> Option<f64> {
        let pid = std::fs::read_to_string(g.dir().join("node0/garage.pid")).ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).ok()?;
        // After "pid (comm) ": state is field 3, utime 14, stime 15.
        let rest = &stat[stat.rfind(')')? + 1..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
        Some(ticks / self.clk_tck)
    }

    /// The number and total size of the segments directly under `prefix` in `g`'s bucket.
    fn stored(&self, g: &Garage, prefix: &str) -> (u64, u64) {
        let store = AmazonS3Builder::new()
            .with_bucket_name(g.bucket())
            .with_region(g.region())
            .with_endpoint(g.endpoint())
            .with_access_key_id(g.access_key_id())
            .with_secret_access_key(g.secret_access_key())
            .with_allow_http(true)
            .build()
            .expect("an S3 client for Garage");
        let listed = self
            .rt
            .block_on(store.list_with_delimiter(Some(&ObjPath::from(prefix))))
            .expect("list the run's objects");
        listed
            .objects
            .iter()
            .filter(|o| o.location.filename().is_some_and(is_segment_name))
            .fold((0, 0), |(n, b), o| (n + 1, b + o.size))
    }
}

/// A complete segment's name: 24 hex digits, and a compression suffix or none.
fn is_segment_name(name: &str) -> bool {
    let (seg, suffix) = name.split_at_checked(24).unwrap_or(("", name));
    seg.len() == 24
        && seg.bytes().all(|b| b.is_ascii_hexdigit())
        && ["", ".gz", ".lz4", ".zst"].contains(&suffix)
}

fn complete_segments(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .ok()
                .and_then(|e| e.file_name().into_string().ok())
                .is_some_and(|n| is_segment_name(&n))
        })
        .count() as u64
}

/// Writes back all dirty pages, so a run does not pay for the one before it.
fn settle() {
    let _ = Command::new("sync").status();
    std::thread::sleep(Duration::from_secs(2));
}

fn main() {
    let a = or_exit("store_side_by_side", args());
    let garage_bin = Garage::binary().unwrap_or_else(|| {
        eprintln!(
            "store_side_by_side: no garage program; install it with: {}",
            testenv::GARAGE_INSTALL
        );
        std::process::exit(2);
    });
    let pg = server();
    let mut targets = vec![Target::Local];
    targets.extend(a.jobs.iter().map(|&j| Target::Store(j)));
    let mut order = Vec::new();
    for &sync in &a.syncs {
        for r in 0..a.rounds {
            let mut round: Vec<(bool, usize, Target)> =
                targets.iter().map(|&t| (sync, r, t)).collect();
            if r % 2 == 1 {
                round.reverse();
            }
            order.extend(round);
        }
    }
    // One slot per run and two for the warm-up, all made before the WAL is written: every
    // run starts at the same position and reads the same bytes.
    pg.sql(&format!(
        "ALTER SYSTEM SET max_replication_slots = {}",
        order.len() + 4
    ))
    .unwrap();
    pg.restart().unwrap();
    let mut slots = vec!["bench_warm_local".to_owned(), "bench_warm_store".to_owned()];
    slots.extend((0..order.len()).map(|i| format!("bench_{i}")));
    let mut starts = Vec::new();
    for s in &slots {
        let lsn: Lsn = pg.create_physical_slot(s).unwrap().parse().unwrap();
        starts.push(lsn.0 / SEGMENT);
    }
    assert!(
        starts.iter().all(|&s| s == starts[0]),
        "the slots start in different segments"
    );
    eprintln!("generating {} MB of WAL...", a.wal_mb);
    pg.generate_wal(a.wal_mb << 20).unwrap();
    pg.switch_wal().unwrap();
    let end = pg.sql("SELECT pg_current_wal_flush_lsn()").unwrap();
    let end_lsn: Lsn = end.parse().unwrap();
    let segments = end_lsn.0 / SEGMENT - starts[0];
    let wal_bytes = segments * SEGMENT;
    // The WAL in the page cache for every run alike.
    for f in std::fs::read_dir(pg.pg_wal_dir()).unwrap() {
        let _ = std::fs::read(f.unwrap().path());
    }
    let bench = Bench {
        a: &a,
        pg: &pg,
        conninfo: pg.conninfo(testenv::roles::REPL_TRUST.name, None),
        end,
        segments,
        shared: (!a.fresh_garage).then(|| Garage::start(1).expect("a Garage store")),
        rt: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime"),
        clk_tck: Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0),
    };
    // Untimed first passes: whichever run reads the new WAL first is several times slower,
    // and it must not be a timed one. The store's pass also shows that it works.
    eprintln!("warm-up passes...");
    bench.run(Target::Local, "bench_warm_local", false, "warm_local");
    bench.run(
        Target::Store(DEFAULT_UPLOAD_JOBS),
        "bench_warm_store",
        false,
        "warm_store",
    );
    for s in ["bench_warm_local", "bench_warm_store"] {
        pg.sql(&format!("SELECT pg_drop_replication_slot('{s}')"))
            .unwrap();
    }
    let mut samples = Vec::new();
    for (i, &(sync, round, target)) in order.iter().enumerate() {
        let slot = format!("bench_{i}");
        let mode = if sync { "fsync" } else { "nosync" };
        let (run, garage_cpu) = bench.run(target, &slot, sync, &format!("run_{i}_{mode}"));
        eprintln!(
            "  {mode:<6} {:<34} {:>6.2} s wall {:>6.2} s cpu {:>6.1} MiB  garage {}",
            target.name(),
            run.wall,
            run.cpu,
            run.rss_kib / 1024.0,
            garage_cpu.map_or("?".into(), |c| format!("{c:.2} s cpu")),
        );
        samples.push(Sample {
            sync,
            target,
            round,
            run,
            garage_cpu,
        });
        pg.sql(&format!("SELECT pg_drop_replication_slot('{slot}')"))
            .unwrap();
    }
    let garage_version = Command::new(&garage_bin)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    // "garage v2.5.0 [...]" from a release, "garage cargo:2.5.0 [...]" from `cargo install`.
    let garage_version = garage_version
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.find(|c: char| c.is_ascii_digit()).map(|at| &v[at..]))
        .unwrap_or("?");
    let mb = wal_bytes as f64 / 1e6;
    let mut table = vec![
        machine(),
        String::new(),
        format!(
            "PostgreSQL {}; Garage {garage_version}, 1 node on loopback ({}); {segments} \
             segments ({mb:.0} MB) from a slot to --endpos; {} rounds, alternating; medians; \
             MB/s = WAL bytes ÷ wall",
            pg.bin().full_version(),
            if a.fresh_garage {
                "a fresh one per store run"
            } else {
                "one for all runs"
            },
            a.rounds
        ),
    ];
    for &sync in &a.syncs {
        let what = format!(
            "-Z {}, {}",
            a.compress,
            if sync { "default fsync" } else { "--no-sync" }
        );
        let of = |t: Target| -> Vec<&Sample> {
            samples
                .iter()
                .filter(|s| s.sync == sync && s.target == t)
                .collect()
        };
        let med =
            |t: Target, f: &dyn Fn(&Sample) -> f64| median(of(t).iter().map(|s| f(s)).collect());
        let local_rate = mb / med(Target::Local, &|s| s.run.wall);
        table.push(String::new());
        table.push(format!(
            "| {what} | wall | CPU (user+sys) | peak RSS | MB/s | ÷ local | Garage CPU |"
        ));
        table.push("|---|---|---|---|---|---|---|".into());
        for &t in &targets {
            let wall = med(t, &|s| s.run.wall);
            let garage = if t == Target::Local {
                "—".to_owned()
            } else if of(t).iter().all(|s| s.garage_cpu.is_some()) {
                format!("{:.2} s", med(t, &|s| s.garage_cpu.unwrap_or(0.0)))
            } else {
                "?".to_owned()
            };
            table.push(format!(
                "| {} | {wall:.2} s | {:.2} s | {:.1} MiB | {:.0} | {:.2}× | {garage} |",
                t.name(),
                med(t, &|s| s.run.cpu),
                med(t, &|s| s.run.rss_kib) / 1024.0,
                mb / wall,
                mb / wall / local_rate,
            ));
        }
        // The same ratio round by round (each store run against the local run of its round):
        // how far the medians can be trusted on a noisy machine.
        let per_round: Vec<String> = targets[1..]
            .iter()
            .map(|&t| {
                let ratios: Vec<String> = of(t)
                    .iter()
                    .map(|s| {
                        let local = of(Target::Local)
                            .into_iter()
                            .find(|l| l.round == s.round)
                            .map_or(f64::NAN, |l| l.run.wall);
                        format!("{:.2}", local / s.run.wall)
                    })
                    .collect();
                format!("{}: {}", t.name(), ratios.join(", "))
            })
            .collect();
        table.push(String::new());
        table.push(format!(
            "{what}, store ÷ local throughput per round: {}",
            per_round.join("; ")
        ));
    }
    println!("{}", table.join("\n"));
}
