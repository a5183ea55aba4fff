//! Reading the planned files and checking them: one thread reads and decompresses, the
//! caller's decodes, and between them a few 256 KiB buffers go back and forth (sized to stay
//! in the cache between the copy from the kernel and the decoding).

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::mpsc::{self, Receiver, SyncSender};

use pgwire_repl::wal::{EndReason, Event, WalDecoder};
use pgwire_repl::{Lsn, TimelineId, WalSegmentSize};

use super::plan::{Plan, Planned, Problem};
use super::TimelineSummary;
use crate::archive::{zfile, Archive, Method};
use crate::observe::wal_stats::Stats;

/// Bytes handed from the reading thread to the decoding one at a time.
const CHUNK: usize = 1 << 18;
/// Buffers in flight between the two threads: memory is bounded by their number.
const BUFFERS: usize = 6;

/// What verifying found.
#[derive(Debug, Default)]
pub struct Outcome {
    pub seg: Option<WalSegmentSize>,
    pub segments: u64,
    /// WAL bytes read (uncompressed).
    pub bytes: u64,
    pub records: u64,
    pub timelines: Vec<TimelineSummary>,
    pub problems: Vec<Problem>,
    pub stats: Stats,
    /// The names pg_waldump gives the version's built-in resource managers, by id.
    pub rmgr_names: Vec<&'static str>,
}

/// From the reading thread.
enum Msg {
    /// The file's next bytes: the buffer's first `.2`.
    Data(usize, Vec<u8>, usize),
    /// The file has been read whole.
    Done(usize),
    /// Reading it failed; nothing more comes of it.
    Failed(usize, std::io::Error),
}

/// Reads every planned file, decodes it after its predecessor, and collects the problems.
pub async fn run(archive: &Archive, plan: &Plan, seg: WalSegmentSize) -> Outcome {
    let mut v = Verifier {
        plan,
        seg,
        out: Outcome {
            seg: Some(seg),
            problems: plan.problems.clone(),
            ..Outcome::default()
        },
        ends: BTreeMap::new(),
        system_id: None,
        timelines: BTreeMap::new(),
    };
    let (to_decoder, from_reader) = mpsc::sync_channel::<Msg>(BUFFERS);
    let (to_reader, spare) = mpsc::sync_channel::<Vec<u8>>(BUFFERS);
    for _ in 0..BUFFERS {
        let _ = to_reader.send(vec![0; CHUNK]);
    }
    std::thread::scope(|scope| {
        let archive = archive.clone();
        let files = &plan.files;
        scope.spawn(move || read_all(&archive, files, &to_decoder, &spare));
        v.decode_all(&from_reader, &to_reader);
    });
    v.out.timelines = v.timelines.into_values().collect();
    v.out
}

/// The reading thread: each file in order, in chunks, through the spare buffers.
fn read_all(
    archive: &Archive,
    files: &[Planned],
    out: &SyncSender<Msg>,
    spare: &Receiver<Vec<u8>>,
) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    // Its own connections: the caller's runtime is blocked while this thread reads.
    let archive = &match archive.reopen() {
        Ok(a) => a,
        Err(e) => {
            let _ = out.send(Msg::Failed(0, std::io::Error::other(e)));
            return;
        }
    };
    for (i, f) in files.iter().enumerate() {
        let opened = rt
            .block_on(archive.read_uncompressed(&f.file.name, f.name.method))
            .map(|r| match f.name.partial && f.name.method != Method::None {
                // A compressed .partial ends where it stops decoding (see partial_reader).
                true => zfile::partial_reader(r),
                false => r,
            });
        let mut r = match opened {
            Ok(r) => r,
            Err(e) => {
                if out.send(Msg::Failed(i, e)).is_err() {
                    return;
                }
                continue;
            }
        };
        loop {
            // Buffers stay at full length, zeroed once when made: reads go straight into
            // them, with nothing to clear or initialize each time.
            let Ok(mut buf) = spare.recv() else { return };
            buf.resize(CHUNK, 0);
            let mut filled = 0;
            let read = loop {
                match r.read(&mut buf[filled..]) {
                    Ok(0) => break Ok(()),
                    Ok(n) => {
                        filled += n;
                        if filled == CHUNK {
                            break Ok(());
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(e),
                }
            };
            let msg = match read {
                Err(e) => Msg::Failed(i, e),
                Ok(()) if filled == 0 => Msg::Done(i),
                Ok(()) => Msg::Data(i, buf, filled),
            };
            let last = !matches!(msg, Msg::Data(..));
            if out.send(msg).is_err() {
                return;
            }
            if last {
                break;
            }
        }
    }
}

struct Verifier<'a> {
    plan: &'a Plan,
    seg: WalSegmentSize,
    out: Outcome,
    /// The decoder as it stood at the end of a file that others carry on from, with that
    /// file's segment number.
    ends: BTreeMap<usize, (u64, WalDecoder)>,
    /// The first system identifier seen: every segment must carry it.
    system_id: Option<u64>,
    timelines: BTreeMap<TimelineId, TimelineSummary>,
}

/// How one file's reading is going.
struct FileState {
    index: usize,
    decoder: Option<WalDecoder>,
    bytes: u64,
    /// Valid WAL ended (or a problem stopped the decoding): the rest is not decoded.
    stopped: bool,
    wrong_tli_reported: bool,
}

impl Verifier<'_> {
    fn decode_all(&mut self, from_reader: &Receiver<Msg>, to_reader: &SyncSender<Vec<u8>>) {
        // Each data buffer goes back once decoded, and a new one replaces the buffer the
        // reader drops at the end of a file or on an error. Never a blocking send: the
        // reader may be waiting to send to us (a buffer too many is simply dropped).
        let mut current: Option<FileState> = None;
        while let Ok(msg) = from_reader.recv() {
            let i = match &msg {
                Msg::Data(i, _, _) | Msg::Done(i) | Msg::Failed(i, _) => *i,
            };
            if current.as_ref().is_none_or(|c| c.index != i) {
                current = Some(self.start(i));
            }
            let Some(state) = current.as_mut() else {
                continue;
            };
            match msg {
                Msg::Data(_, buf, len) => {
                    self.feed(state, &buf[..len]);
                    let _ = to_reader.try_send(buf);
                }
                Msg::Done(_) => {
                    let _ = to_reader.try_send(vec![0; CHUNK]);
                    if let Some(s) = current.take() {
                        self.finish(s);
                    }
                }
                Msg::Failed(_, e) => {
                    let what = if e.kind() == std::io::ErrorKind::InvalidData {
                        format!("could not be decompressed: {e}")
                    } else {
                        format!("could not be read: {}", crate::output::os_error(&e))
                    };
                    self.problem(i, None, what);
                    let _ = to_reader.try_send(vec![0; CHUNK]);
                    current = None;
                }
            }
        }
    }

    fn start(&mut self, index: usize) -> FileState {
        let f = &self.plan.files[index];
        // Ends no later file can carry on from: their successors would be in the next segment.
        self.ends.retain(|_, (segno, _)| *segno + 1 >= f.name.segno);
        let decoder = match f.pred.and_then(|p| self.ends.get(&p)) {
            Some((_, d)) => d.clone(),
            None => WalDecoder::new(
                self.seg,
                self.seg.segment_start(f.name.segno).unwrap_or(Lsn(0)),
            ),
        };
        self.out.segments += 1;
        FileState {
            index,
            decoder: Some(decoder),
            bytes: 0,
            stopped: false,
            wrong_tli_reported: false,
        }
    }

    fn feed(&mut self, s: &mut FileState, data: &[u8]) {
        s.bytes += data.len() as u64;
        self.out.bytes += data.len() as u64;
        if s.stopped {
            return;
        }
        let Some(mut decoder) = s.decoder.take() else {
            return;
        };
        let f = &self.plan.files[s.index];
        let mut problems: Vec<(Option<Lsn>, String)> = Vec::new();
        let mut ended = false;
        let plan = self.plan;
        let stats = &mut self.out.stats;
        let records = &mut self.out.records;
        let system_id = &mut self.system_id;
        let summary = self
            .timelines
            .entry(f.name.timeline)
            .or_insert_with(|| TimelineSummary {
                timeline: f.name.timeline,
                segments: 0,
                first: Lsn(u64::MAX),
                last: Lsn(0),
            });
        let mut wrong_tli = s.wrong_tli_reported;
        let fed = decoder.feed(data, &mut |ev| match ev {
            Event::Page(p) => {
                if let Some(long) = &p.long {
                    match *system_id {
                        None => *system_id = Some(long.system_id),
                        Some(id) if id != long.system_id => problems.push((
                            Some(p.lsn),
                            format!(
                                "from another database system: system identifier {}, the \
                                 archive's is {id}",
                                long.system_id
                            ),
                        )),
                        Some(_) => {}
                    }
                }
                let want = plan.timeline_at(f.name.timeline, p.lsn);
                if p.tli != want && !wrong_tli {
                    wrong_tli = true;
                    problems.push((
                        Some(p.lsn),
                        format!(
                            "page of timeline {}, where timeline {} {}",
                            p.tli,
                            f.name.timeline,
                            if want == f.name.timeline {
                                format!("has its own WAL (it begins at {})", plan.begins(want))
                            } else {
                                format!("has timeline {want}'s WAL")
                            }
                        ),
                    ));
                }
            }
            Event::Record(r) => {
                *records += 1;
                stats.add(r.rmid, r.tot_len, r.fpi_len);
                summary.first = summary.first.min(r.lsn);
                summary.last = summary.last.max(r.end);
            }
            Event::End(e) => {
                ended = true;
                if !f.name.partial {
                    let why = match e.why {
                        EndReason::ZeroPage => "a page of zeros",
                        _ => "a record header of zeros",
                    };
                    problems.push((
                        Some(e.found_at),
                        format!(
                            "WAL ends at {} before the end of the segment ({why})",
                            e.lsn
                        ),
                    ));
                }
            }
            _ => {}
        });
        s.wrong_tli_reported = wrong_tli;
        if let (Some(v), true) = (decoder.version(), self.out.rmgr_names.is_empty()) {
            // The built-in ones: ids from 0 as long as the version names them.
            self.out.rmgr_names = (0..=u8::MAX)
                .map_while(|id| pgwire_repl::wal::rmgr_name(v, id))
                .collect();
        }
        for (lsn, what) in problems {
            self.problem(s.index, lsn, what);
        }
        match fed {
            Ok(()) if ended => s.stopped = true,
            Ok(()) => s.decoder = Some(decoder),
            Err(e) => {
                self.problem(s.index, Some(e.lsn), e.to_string());
                s.stopped = true;
            }
        }
    }

    fn finish(&mut self, s: FileState) {
        let f = &self.plan.files[s.index];
        let want = u64::from(self.seg.bytes());
        if let Some(summary) = self.timelines.get_mut(&f.name.timeline) {
            summary.segments += 1;
        }
        if !f.name.partial && s.bytes != want {
            let what = if f.name.method == crate::archive::Method::None {
                format!("has {} bytes, a segment has {want}", s.bytes)
            } else {
                format!("holds {} bytes uncompressed, a segment has {want}", s.bytes)
            };
            self.problem(s.index, None, what);
            return;
        }
        if f.has_succ && !s.stopped {
            if let Some(d) = s.decoder {
                self.ends.insert(s.index, (f.name.segno, d));
            }
        }
    }

    fn problem(&mut self, index: usize, lsn: Option<Lsn>, message: String) {
        let f = &self.plan.files[index];
        self.out
            .problems
            .push(Problem::in_file(&f.file.name, lsn, message));
    }
}
