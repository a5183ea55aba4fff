//! Timing the side-by-side programs' runs: `/usr/bin/time`'s wall, CPU and peak RSS, medians,
//! and the markdown rows they print.

use std::path::Path;
use std::process::Command;

/// One timed run: wall seconds, CPU seconds (user + system), peak RSS in KiB.
#[derive(Clone, Copy, Default, Debug)]
pub struct Run {
    pub wall: f64,
    pub cpu: f64,
    pub rss_kib: f64,
}

/// Puts `/usr/bin/time -o stats -f …` in front of what `cmd` will run.
pub fn time_into(cmd: &mut Command, stats: &Path) {
    cmd.arg("-o").arg(stats).args(["-f", "%e %U %S %M"]);
}

/// The [`Run`] that `/usr/bin/time` wrote to `stats` (its last line).
pub fn read_stats(stats: &Path) -> Run {
    let text = std::fs::read_to_string(stats).expect("time output");
    let last = text.lines().last().unwrap_or_default();
    let f: Vec<f64> = last
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    assert_eq!(f.len(), 4, "unexpected /usr/bin/time output: {text}");
    Run {
        wall: f[0],
        cpu: f[1] + f[2],
        rss_kib: f[3],
    }
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// `| label | ours unit | theirs unit | ratio× |`.
pub fn row(label: &str, ours: f64, theirs: f64, unit: &str, digits: usize) -> String {
    format!(
        "| {label} | {ours:.digits$} {unit} | {theirs:.digits$} {unit} | {:.2}× |",
        ours / theirs
    )
}

/// The side-by-side programs' command line: `--pgwal-recv PATH` (required; the `.sh`
/// wrapper `script` passes it) and `--key value` pairs, each handed to `set`, which answers
/// whether it knows the key. Returns the path.
pub fn parse_args(
    script: &str,
    set: &mut dyn FnMut(&str, &str) -> Result<bool, String>,
) -> Result<std::path::PathBuf, String> {
    let mut exe = None;
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().ok_or(format!("{k} needs a value"))?;
        if k == "--pgwal-recv" {
            exe = Some(std::path::PathBuf::from(v));
        } else if !set(&k, &v)? {
            return Err(format!("unknown option {k}"));
        }
    }
    exe.ok_or_else(|| format!("--pgwal-recv PATH is required (use {script})"))
}

/// A whole number option's value.
pub fn num(key: &str, value: &str) -> Result<u64, String> {
    value
        .parse()
        .map_err(|_| format!("bad value for {key}: {value}"))
}

/// The parsed command line, or its error printed as `program: error` and exit status 2.
pub fn or_exit<T>(program: &str, args: Result<T, String>) -> T {
    args.unwrap_or_else(|e| {
        eprintln!("{program}: {e}");
        std::process::exit(2);
    })
}

/// `date, kernel, CPU model, cores, memory` of this machine.
pub fn machine() -> String {
    let out = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<f64>().ok())
        .map_or(0.0, |k| k / 1024.0 / 1024.0);
    format!(
        "{}; Linux {}; {model}, {} cores, {mem_gib:.0} GiB",
        out("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        out("uname", &["-r"]),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    )
}
