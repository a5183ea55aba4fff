//! `pgwal-recv measure`: stream WAL without writing it, and report how fast it flows and how
//! far behind the server the stream is — the protocol-level benchmark of a walsender, and
//! the ceiling for the archiver on the same WAL.
//!
//! It starts at the slot's restart_lsn (`-S`, PostgreSQL 15+) or at the start of the
//! server's current segment, reports what it received as written and nothing as flushed
//! (so a slot is never advanced and a run can be repeated), follows timeline switches, and
//! stops at `-E` (once WAL up to it has arrived), after `--duration`, on SIGINT/SIGTERM, or
//! when the server ends the stream. `bytes` is `end_lsn − start_lsn`, with `end_lsn` capped
//! at `-E`; lag percentiles are taken after every message.

use std::time::{Duration, Instant};

use pgwire_repl::wal::{Event as WalEvent, RecordInfo, WalDecoder};
use pgwire_repl::{
    Client, Lsn, PrimaryKeepalive, StreamSender, TimelineId, WalSegmentSize, XLogData,
};

use crate::cli::MeasureOptions;
use crate::connect::{block_on, config, connect};
use crate::observe::histogram::Histogram;
use crate::observe::monitor::Monitor;
use crate::observe::wal_stats::{RmgrStats, Stats};
use crate::output::{bytes, error, info, report, PROGNAME};
use crate::stream::follow::{follow, Follow, Handler, Step, StopReason};
use crate::stream::start::{slot_start, version_text, SlotStart};
use crate::stream::{StopSignal, StreamError};

/// Runs `measure` and returns the exit code.
pub fn main(o: MeasureOptions) -> i32 {
    block_on(measure(o))
}

/// What a run measured.
#[derive(Debug)]
struct Summary {
    start: Lsn,
    end: Lsn,
    timeline: TimelineId,
    seconds: f64,
    messages: u64,
    keepalives: u64,
    lag_bytes: Histogram,
    lag_micros: Histogram,
    /// With `--stats`: the records by resource manager, and their names.
    wal: Option<(Stats, Vec<(u8, &'static str)>)>,
}

impl Summary {
    fn bytes(&self) -> u64 {
        self.end.0.saturating_sub(self.start.0)
    }

    fn mb_per_s(&self) -> f64 {
        if self.seconds > 0.0 {
            self.bytes() as f64 / self.seconds / 1e6
        } else {
            0.0
        }
    }

    fn human(&self) -> Vec<String> {
        let pct = |h: &Histogram, f: &dyn Fn(u64) -> String| {
            format!(
                "p50 {}, p99 {}, max {}",
                f(h.quantile(0.5)),
                f(h.quantile(0.99)),
                f(h.max())
            )
        };
        let secs = |us: u64| format!("{:.3} s", us as f64 / 1e6);
        vec![
            format!(
                "received {} to {} (timeline {}): {} in {:.3} s, {:.1} MB/s",
                self.start,
                self.end,
                self.timeline,
                bytes(self.bytes()),
                self.seconds,
                self.mb_per_s()
            ),
            format!(
                "{} XLogData messages, {} keepalives",
                self.messages, self.keepalives
            ),
            format!("lag in bytes: {}", pct(&self.lag_bytes, &bytes)),
            format!("lag in time: {}", pct(&self.lag_micros, &secs)),
        ]
        .into_iter()
        .chain(self.rmgr_rows().map(|(name, s, per_s)| {
            format!(
                "{name}: {} records, {} ({} of full-page images); {:.0} records/s, {}/s",
                s.records,
                bytes(s.record_bytes + s.fpi_bytes),
                bytes(s.fpi_bytes),
                per_s.0,
                bytes(per_s.1 as u64)
            )
        }))
        .collect()
    }

    /// With `--stats`, each resource manager seen: name, figures, and records and bytes per
    /// second over the run; most bytes first.
    fn rmgr_rows(&self) -> impl Iterator<Item = (&'static str, RmgrStats, (f64, f64))> + '_ {
        let secs = self.seconds.max(1e-9);
        let mut rows: Vec<_> = self
            .wal
            .iter()
            .flat_map(|(stats, names)| {
                names.iter().map(move |(id, name)| {
                    let s = stats.get(*id);
                    let b = (s.record_bytes + s.fpi_bytes) as f64;
                    (*name, s, (s.records as f64 / secs, b / secs))
                })
            })
            .collect();
        rows.sort_by(|a, b| b.2 .1.total_cmp(&a.2 .1));
        rows.into_iter()
    }

    fn json(&self) -> String {
        let pct = |h: &Histogram, f: &dyn Fn(u64) -> serde_json::Value| {
            serde_json::json!({
                "p50": f(h.quantile(0.5)),
                "p99": f(h.quantile(0.99)),
                "max": f(h.max()),
            })
        };
        let seconds = |us: u64| serde_json::json!(round(us as f64 / 1e6, 6));
        let mut doc = serde_json::json!({
            "start_lsn": self.start.to_string(),
            "end_lsn": self.end.to_string(),
            "timeline": self.timeline.0,
            "bytes": self.bytes(),
            "seconds": round(self.seconds, 6),
            "mb_per_s": round(self.mb_per_s(), 3),
            "messages": self.messages,
            "keepalives": self.keepalives,
            "lag_bytes": pct(&self.lag_bytes, &|v| v.into()),
            "lag_seconds": pct(&self.lag_micros, &seconds),
        });
        if self.wal.is_some() {
            let rmgrs: serde_json::Map<String, serde_json::Value> = self
                .rmgr_rows()
                .map(|(name, s, per_s)| {
                    (
                        name.to_owned(),
                        serde_json::json!({
                            "records": s.records,
                            "record_bytes": s.record_bytes,
                            "fpi_bytes": s.fpi_bytes,
                            "records_per_s": round(per_s.0, 1),
                            "bytes_per_s": round(per_s.1, 1),
                        }),
                    )
                })
                .collect();
            doc["rmgrs"] = serde_json::Value::Object(rmgrs);
        }
        doc.to_string()
    }
}

/// `x` to `digits` decimals, as the JSON shows it.
fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

async fn measure(o: MeasureOptions) -> i32 {
    let mut stop = StopSignal::watch();
    let monitor = Monitor::default();
    let mut cfg = match config(&o.conn) {
        Ok(c) => c,
        Err(e) => {
            error(report(&e));
            return 1;
        }
    };
    if let Some(addr) = o.metrics_listen {
        match crate::observe::metrics::start(addr, monitor.clone()).await {
            Ok(bound) => info(format!("serving metrics at http://{bound}/metrics")),
            Err(e) => {
                error(e);
                return 1;
            }
        }
    }
    let mut client = match connect(&mut cfg, &o.conn, true).await {
        Ok(c) => c,
        Err(e) => {
            error(e);
            return 1;
        }
    };
    let (start, tli, seg) = match start_position(&mut client, &o).await {
        Ok(s) => s,
        Err(e) => {
            error(e);
            return 1;
        }
    };
    if let Some(end) = o.endpos.filter(|e| *e <= start) {
        error(format!(
            "end position {end} is not after the start position {start}"
        ));
        return 1;
    }
    let mut summary = Summary {
        start,
        end: start,
        timeline: tli,
        seconds: 0.0,
        messages: 0,
        keepalives: 0,
        lag_bytes: Histogram::default(),
        lag_micros: Histogram::default(),
        wal: None,
    };
    let result = run(&mut client, &o, seg, &monitor, &mut stop, &mut summary).await;
    let _ = client.close().await;
    let lines = summary.human();
    if o.json {
        for l in lines {
            info(l);
        }
        println!("{}", summary.json());
    } else {
        for l in lines {
            println!("{PROGNAME}: {l}");
        }
    }
    match result {
        Ok(()) => 0,
        Err(e) => {
            error(e);
            1
        }
    }
}

/// The slot's restart_lsn (15+), else the server's current position; a segment start.
async fn start_position(
    client: &mut Client,
    o: &MeasureOptions,
) -> Result<(Lsn, TimelineId, WalSegmentSize), String> {
    let sys = client.identify_system().await.map_err(|e| {
        format!(
            "could not send replication command \"IDENTIFY_SYSTEM\": {}",
            report(&e)
        )
    })?;
    let seg = client.wal_segment_size().await.map_err(|e| report(&e))?;
    let mut at = (sys.xlogpos, sys.timeline);
    if let Some(slot) = o.slot.as_deref() {
        match slot_start(client, slot).await.map_err(|e| e.message)? {
            SlotStart::At(lsn, tli) => at = (lsn, tli),
            SlotStart::NoRestartLsn => info(format!(
                "replication slot \"{slot}\" has no restart_lsn: starting at the current position"
            )),
            SlotStart::Unsupported(version) => info(format!(
                "server {} has no READ_REPLICATION_SLOT: starting at the current position",
                version_text(version)
            )),
        }
    }
    Ok((seg.round_down(at.0), at.1, seg))
}

/// Streams and counts; the summary's end and duration are filled in whatever happens.
async fn run(
    client: &mut Client,
    o: &MeasureOptions,
    seg: WalSegmentSize,
    monitor: &Monitor,
    stop: &mut StopSignal,
    sum: &mut Summary,
) -> Result<(), String> {
    let began = Instant::now();
    let opts = Follow {
        slot: o.slot.clone(),
        status_interval: o.status_interval,
        reply_to_keepalives: true,
        deadline: o
            .duration
            .map(|d| tokio::time::Instant::from_std(began + d)),
        tick: Some(Duration::from_secs(1)),
    };
    let (start, tli) = (sum.start, sum.timeline);
    let mut m = Measurer {
        o,
        seg,
        monitor,
        sum,
        stopped_at: None,
        decoder: None,
        records: Vec::new(),
        last_tick: (Stats::default(), Instant::now()),
    };
    let result = follow(client, &opts, start, tli, stop, &mut m).await;
    if o.stats {
        m.sum.wal = Some(monitor.wal_stats());
    }
    monitor.disconnected();
    let ended = m.stopped_at.unwrap_or_else(Instant::now);
    sum.seconds = ended.duration_since(began).as_secs_f64();
    if let Some(e) = o.endpos {
        sum.end = sum.end.min(e);
    }
    result.map_err(|e| e.message)
}

impl Measurer<'_> {
    /// `--stats`: records and bytes per second by resource manager since the last line,
    /// busiest first (those with any).
    fn rates(&mut self) -> Vec<String> {
        let (stats, names) = self.monitor.wal_stats();
        let now = Instant::now();
        let secs = now.duration_since(self.last_tick.1).as_secs_f64().max(1e-9);
        let mut rows: Vec<(f64, String)> = names
            .iter()
            .filter_map(|(id, name)| {
                let (a, b) = (stats.get(*id), self.last_tick.0.get(*id));
                let records = a.records - b.records;
                let bytes_ = (a.record_bytes + a.fpi_bytes) - (b.record_bytes + b.fpi_bytes);
                (records > 0).then(|| {
                    (
                        bytes_ as f64 / secs,
                        format!(
                            "  {name}: {:.0} records/s, {}/s",
                            records as f64 / secs,
                            bytes((bytes_ as f64 / secs) as u64)
                        ),
                    )
                })
            })
            .collect();
        rows.sort_by(|a, b| b.0.total_cmp(&a.0));
        self.last_tick = (stats, now);
        rows.into_iter().map(|(_, l)| l).collect()
    }
}

/// `measure`'s side of the stream: counts, never writes.
struct Measurer<'a> {
    o: &'a MeasureOptions,
    seg: WalSegmentSize,
    monitor: &'a Monitor,
    sum: &'a mut Summary,
    /// When the stream was told to stop (the end of the measured time).
    stopped_at: Option<Instant>,
    /// `--stats`: the WAL decoder over the stream.
    decoder: Option<WalDecoder>,
    /// A message's records, handed to the monitor together.
    records: Vec<RecordInfo>,
    /// The figures at the last progress line, and when: the next line shows the difference.
    last_tick: (Stats, Instant),
}

impl Handler for Measurer<'_> {
    async fn before_timeline(
        &mut self,
        _client: &mut Client,
        _tli: TimelineId,
        _start: Lsn,
    ) -> Result<Step, StreamError> {
        Ok(Step::Go)
    }

    fn started(&mut self, _sender: &StreamSender, tli: TimelineId, start: Lsn) {
        self.monitor.streaming(start, tli);
        self.sum.timeline = tli;
        if self.o.stats {
            // A new timeline starts where the last record of the old one ended, maybe
            // inside a page: the version comes from the old one's pages then.
            let mut d = WalDecoder::new(self.seg, start);
            if let Some(v) = self.decoder.as_ref().and_then(WalDecoder::version) {
                d.set_version(v);
            }
            self.decoder = Some(d);
        }
    }

    fn xlogdata(&mut self, x: &XLogData, sender: &StreamSender) -> Result<Step, StreamError> {
        self.monitor.xlogdata(x);
        if let Some(d) = self
            .decoder
            .as_mut()
            .filter(|d| d.position() == x.wal_start)
        {
            let records = &mut self.records;
            records.clear();
            d.feed(&x.data, &mut |ev| {
                if let WalEvent::Record(r) = ev {
                    records.push(r);
                }
            })
            .map_err(|e| StreamError::retry(format!("cannot decode the WAL received: {e}")))?;
            self.monitor.records(&self.records);
        }
        self.sum.messages += 1;
        let end = x.data_end().unwrap_or(x.wal_start);
        self.sum.end = self.sum.end.max(end);
        // Received, never flushed: a slot is not advanced, so a run can be repeated.
        sender.set_positions(self.sum.end, Lsn::INVALID, Lsn::INVALID);
        record_lag(self.monitor, self.sum);
        Ok(if self.o.endpos.is_some_and(|e| end >= e) {
            Step::Stop
        } else {
            Step::Go
        })
    }

    async fn keepalive(
        &mut self,
        k: &PrimaryKeepalive,
        _sender: &StreamSender,
    ) -> Result<(), StreamError> {
        self.monitor.keepalive(k);
        self.sum.keepalives += 1;
        record_lag(self.monitor, self.sum);
        Ok(())
    }

    fn stopping(&mut self, _why: StopReason) -> Result<(), StreamError> {
        self.stopped_at = Some(Instant::now());
        Ok(())
    }

    fn ended(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn received(&self) -> Lsn {
        self.sum.end
    }

    fn switched(&mut self, tli: TimelineId, at: Lsn) {
        info(format!("switched to timeline {tli} at {at}"));
    }

    fn tick(&mut self) {
        let mut lines = vec![crate::observe::progress::line(&self.monitor.snapshot())];
        if self.o.stats {
            lines.extend(self.rates());
        }
        for line in lines {
            if self.o.json {
                info(line)
            } else {
                println!("{PROGNAME}: {line}")
            }
        }
    }
}

fn record_lag(monitor: &Monitor, sum: &mut Summary) {
    let s = monitor.snapshot();
    sum.lag_bytes.record(s.lag.receive_lag_bytes);
    sum.lag_micros
        .record(u64::try_from(s.lag.receive_lag.as_micros()).unwrap_or(u64::MAX));
}
