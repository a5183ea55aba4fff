//! `BASE_BACKUP`: the command text for the server's version, and the answer decoded into
//! typed events by a state machine fed backend messages.
//!
//! Two forms, as PostgreSQL's `pg_basebackup` speaks them (its `pg_basebackup.c`; the server
//! side in `basebackup.c` and, from 15, `basebackup_copy.c`):
//! - **13 and 14**: keyword options (`LABEL 'x' PROGRESS FAST WAL NOWAIT …`). The server
//!   sends the start position and the tablespace list as result sets, then one COPY OUT per
//!   tablespace carrying raw tar data in the list's order (the main data directory last),
//!   then one more COPY OUT with the manifest if one was asked for, then the end position.
//!   These servers do not end their tar streams; the decoder adds the two zero blocks that
//!   end a tar archive, so that every archive an application sees is a complete tar.
//! - **15 and later**: parenthesized options (`(LABEL 'x', CHECKPOINT 'fast', …)`). The same
//!   result sets, then a single COPY OUT whose CopyData messages begin with a type byte:
//!   `n` a new archive (its name and tablespace path), `d` data, `p` progress (bytes done),
//!   `m` the manifest follows. The server ends each tar itself.
//!
//! The events are the same for both forms; archive and manifest data are zero-copy slices
//! of the read buffer.

use std::collections::VecDeque;

use bytes::Bytes;

use super::backend::BackendMessage;
use super::codec::Reader;
use super::query::QueryResult;
use crate::error::{DbError, Error, Result};
use crate::lsn::{Lsn, TimelineId};
use crate::server_version::ServerVersion;

mod options;
pub use options::{
    base_backup_command, upload_manifest_command, BaseBackupOptions, CheckpointMode, ManifestOption,
};

/// The end of a tar archive: two zero blocks. Servers before 15 leave it off.
const TAR_END: [u8; 1024] = [0; 1024];

/// One row of the tablespace list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tablespace {
    /// `None` for the main data directory.
    pub oid: Option<u32>,
    /// The tablespace's directory on the server; `None` for the main data directory.
    pub location: Option<String>,
    /// Estimated size in kB, when `PROGRESS` was asked for.
    pub size_kb: Option<u64>,
}

/// What a base backup's answer holds, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupEvent {
    /// The backup's start: WAL from here on is needed to make it consistent.
    Started { start: Lsn, timeline: TimelineId },
    /// The tablespaces, the main data directory last.
    Tablespaces(Vec<Tablespace>),
    /// A new archive: `base.tar` (the main data directory, `location` `None`) or
    /// `OID.tar` (a tablespace); with server compression, the compressed name
    /// (`base.tar.gz`, …).
    ArchiveStart {
        name: String,
        location: Option<String>,
    },
    /// The current archive's next bytes.
    ArchiveData(Bytes),
    /// The backup manifest follows.
    ManifestStart,
    /// The manifest's next bytes.
    ManifestData(Bytes),
    /// The server's count of bytes done (15+; before 15, count the data yourself).
    Progress(u64),
    /// The backup's end: WAL up to here is needed.
    Ended { end: Lsn, timeline: TimelineId },
}

/// What the decoder does with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupStep {
    /// Nothing to hand out yet: feed the next message.
    Continue,
    /// An event, and perhaps more: call [`BaseBackupDecoder::next_event`] until `None`.
    Event,
    /// ReadyForQuery: the command is over, the connection takes the next one.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Result sets before COPY: the start position, the tablespace list.
    Header,
    /// Before 15: inside the COPY OUT of the archive at this index of the tablespace list,
    /// or of the manifest (index = list length).
    OldCopy(usize),
    /// Before 15: between COPY OUTs.
    OldBetween(usize),
    /// 15+: inside the single COPY OUT; what the last `n` or `m` began.
    NewCopy(NewPart),
    /// After COPY: the end position, the final CommandComplete.
    Trailer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NewPart {
    Nothing,
    Archive,
    Manifest,
}

/// Decodes the answer to `BASE_BACKUP`: feed it every message that is not a
/// ParameterStatus or NoticeResponse ([`handle`](Self::handle)), then take the events
/// ([`next_event`](Self::next_event)). An `ErrorResponse` becomes the error of the
/// ReadyForQuery that follows it.
#[derive(Debug)]
pub struct BaseBackupDecoder {
    tagged: bool,
    phase: Phase,
    current: Option<QueryResult>,
    header_sets: usize,
    tablespaces: Vec<Tablespace>,
    ended: bool,
    error: Option<DbError>,
    events: VecDeque<BackupEvent>,
}

impl BaseBackupDecoder {
    /// A decoder for a server of `version` (15+ uses the tagged COPY stream).
    pub fn new(version: Option<ServerVersion>) -> BaseBackupDecoder {
        BaseBackupDecoder {
            tagged: version.is_some_and(|v| v.at_least(15)),
            phase: Phase::Header,
            current: None,
            header_sets: 0,
            tablespaces: Vec::new(),
            ended: false,
            error: None,
            events: VecDeque::new(),
        }
    }

    /// The next event the messages fed so far make, oldest first.
    pub fn next_event(&mut self) -> Option<BackupEvent> {
        self.events.pop_front()
    }

    /// Feeds one message.
    pub fn handle(&mut self, msg: BackendMessage) -> Result<BackupStep> {
        let before = self.events.len();
        match msg {
            BackendMessage::ErrorResponse(e) => {
                // The server aborts the command: whatever COPY was open is over.
                self.error.get_or_insert(e);
                self.phase = Phase::Trailer;
            }
            BackendMessage::ReadyForQuery(_) => {
                if let Some(e) = self.error.take() {
                    return Err(Error::Db(Box::new(e)));
                }
                if !self.ended {
                    return Err(Error::protocol(
                        "BASE_BACKUP ended without sending its end position",
                    ));
                }
                return Ok(BackupStep::Done);
            }
            _ if self.error.is_some() => {}
            msg => self.message(msg)?,
        }
        Ok(if self.events.len() > before {
            BackupStep::Event
        } else {
            BackupStep::Continue
        })
    }

    fn message(&mut self, msg: BackendMessage) -> Result<()> {
        match (self.phase, msg) {
            (Phase::Header | Phase::Trailer, BackendMessage::RowDescription(columns)) => {
                if self.current.is_some() {
                    return Err(Error::protocol("RowDescription inside a result set"));
                }
                self.current = Some(QueryResult {
                    columns,
                    ..QueryResult::default()
                });
            }
            (Phase::Header | Phase::Trailer, BackendMessage::DataRow(row)) => {
                // The tablespace list is the only result with many rows; a server has at
                // most a few thousand tablespaces.
                if self
                    .current
                    .as_ref()
                    .is_some_and(|c| c.rows.len() >= MAX_ROWS)
                {
                    return Err(Error::protocol("BASE_BACKUP sent too many rows"));
                }
                super::query::push_row(self.current.as_mut(), &row)?;
            }
            (Phase::Header | Phase::Trailer, BackendMessage::CommandComplete(_)) => {
                // A CommandComplete with no result set open is the command's own (14+).
                if let Some(res) = self.current.take() {
                    self.result_set(res)?;
                }
            }
            (Phase::Header, BackendMessage::CopyOutResponse) => {
                if self.header_sets < 2 {
                    return Err(Error::protocol(
                        "BASE_BACKUP started COPY before sending its start position and tablespaces",
                    ));
                }
                self.phase = if self.tagged {
                    Phase::NewCopy(NewPart::Nothing)
                } else {
                    self.old_copy_start(0)?
                };
            }
            (Phase::OldBetween(i), BackendMessage::CopyOutResponse) => {
                self.phase = self.old_copy_start(i)?;
            }
            (Phase::OldBetween(_), BackendMessage::RowDescription(columns)) => {
                self.phase = Phase::Trailer;
                self.current = Some(QueryResult {
                    columns,
                    ..QueryResult::default()
                });
            }
            (Phase::OldCopy(i), BackendMessage::CopyData(data)) => {
                if i < self.tablespaces.len() {
                    self.events.push_back(BackupEvent::ArchiveData(data));
                } else {
                    self.events.push_back(BackupEvent::ManifestData(data));
                }
            }
            (Phase::OldCopy(i), BackendMessage::CopyDone) => {
                if i < self.tablespaces.len() {
                    self.events
                        .push_back(BackupEvent::ArchiveData(Bytes::from_static(&TAR_END)));
                }
                self.phase = Phase::OldBetween(i + 1);
            }
            (Phase::NewCopy(part), BackendMessage::CopyData(data)) => {
                self.tagged_data(part, data)?
            }
            (Phase::NewCopy(_), BackendMessage::CopyDone) => self.phase = Phase::Trailer,
            (_, msg) => {
                return Err(Error::protocol(format!(
                    "unexpected {} in the answer to BASE_BACKUP",
                    super::query::message_name(&msg)
                )))
            }
        }
        Ok(())
    }

    /// Before 15: COPY OUT number `i` begins: an archive of the list, or the manifest.
    fn old_copy_start(&mut self, i: usize) -> Result<Phase> {
        match i.cmp(&self.tablespaces.len()) {
            std::cmp::Ordering::Less => {
                let ts = &self.tablespaces[i];
                let name = match ts.oid {
                    Some(oid) => format!("{oid}.tar"),
                    None => "base.tar".to_owned(),
                };
                self.events.push_back(BackupEvent::ArchiveStart {
                    name,
                    location: ts.location.clone(),
                });
            }
            std::cmp::Ordering::Equal => self.events.push_back(BackupEvent::ManifestStart),
            std::cmp::Ordering::Greater => {
                return Err(Error::protocol(
                    "BASE_BACKUP sent more COPY streams than tablespaces and a manifest",
                ))
            }
        }
        Ok(Phase::OldCopy(i))
    }

    /// 15+: one tagged CopyData message.
    fn tagged_data(&mut self, part: NewPart, data: Bytes) -> Result<()> {
        let Some(&tag) = data.first() else {
            return Err(Error::protocol("empty CopyData in a base backup"));
        };
        let body = data.slice(1..);
        match tag {
            b'n' => {
                if part == NewPart::Manifest {
                    return Err(Error::protocol("a new archive after the backup manifest"));
                }
                let mut r = Reader::new(&body, "new archive message");
                let name = r.cstr()?.to_owned();
                let path = r.cstr()?.to_owned();
                r.finish()?;
                if name.is_empty() {
                    return Err(Error::protocol("a new archive without a name"));
                }
                self.events.push_back(BackupEvent::ArchiveStart {
                    name,
                    location: (!path.is_empty()).then_some(path),
                });
                self.phase = Phase::NewCopy(NewPart::Archive);
            }
            b'd' => match part {
                NewPart::Archive => self.events.push_back(BackupEvent::ArchiveData(body)),
                NewPart::Manifest => self.events.push_back(BackupEvent::ManifestData(body)),
                NewPart::Nothing => {
                    return Err(Error::protocol(
                        "base backup data before any archive or manifest began",
                    ))
                }
            },
            b'p' => {
                let mut r = Reader::new(&body, "progress message");
                let done = r.i64()?;
                r.finish()?;
                let done = u64::try_from(done).map_err(|_| {
                    Error::protocol(format!("negative base backup progress {done}"))
                })?;
                self.events.push_back(BackupEvent::Progress(done));
            }
            b'm' => {
                if !body.is_empty() {
                    return Err(Error::protocol("trailing bytes in the manifest message"));
                }
                if part == NewPart::Manifest {
                    return Err(Error::protocol("a second backup manifest"));
                }
                self.events.push_back(BackupEvent::ManifestStart);
                self.phase = Phase::NewCopy(NewPart::Manifest);
            }
            other => {
                return Err(Error::protocol(format!(
                    "unrecognized base backup message type 0x{other:02x}"
                )))
            }
        }
        Ok(())
    }

    fn result_set(&mut self, res: QueryResult) -> Result<()> {
        match self.phase {
            Phase::Header if self.header_sets == 0 => {
                let (start, timeline) = position(&res, "start")?;
                self.events
                    .push_back(BackupEvent::Started { start, timeline });
            }
            Phase::Header if self.header_sets == 1 => {
                self.tablespaces = tablespaces(&res)?;
                self.events
                    .push_back(BackupEvent::Tablespaces(self.tablespaces.clone()));
            }
            Phase::Header => {
                return Err(Error::protocol(
                    "BASE_BACKUP sent a third result set before COPY",
                ))
            }
            _ => {
                if self.ended {
                    return Err(Error::protocol("BASE_BACKUP sent a second end position"));
                }
                let (end, timeline) = position(&res, "end")?;
                self.ended = true;
                self.events.push_back(BackupEvent::Ended { end, timeline });
            }
        }
        if self.phase == Phase::Header {
            self.header_sets += 1;
        }
        Ok(())
    }
}

/// A tablespace list longer than this is refused (PostgreSQL's OIDs would allow more, no
/// real server has them).
const MAX_ROWS: usize = 100_000;

fn col<'a>(row: &'a [Option<Bytes>], i: usize, what: &str) -> Result<Option<&'a str>> {
    row.get(i)
        .ok_or_else(|| Error::protocol(format!("{what}: missing column")))?
        .as_deref()
        .map(|b| {
            std::str::from_utf8(b).map_err(|_| Error::protocol(format!("{what} is not UTF-8")))
        })
        .transpose()
}

fn position(res: &QueryResult, which: &str) -> Result<(Lsn, TimelineId)> {
    let what = format!("the backup's {which} position");
    let [row] = res.rows.as_slice() else {
        return Err(Error::protocol(format!(
            "{what}: {} rows, expected 1",
            res.rows.len()
        )));
    };
    let lsn_text = col(row, 0, &what)?.ok_or_else(|| Error::protocol(format!("{what} is NULL")))?;
    let lsn: Lsn = lsn_text
        .parse()
        .map_err(|_| Error::protocol(format!("{what} \"{lsn_text}\" is not a WAL location")))?;
    let tli_text =
        col(row, 1, &what)?.ok_or_else(|| Error::protocol(format!("{what}'s timeline is NULL")))?;
    let tli: u32 =
        tli_text.parse().ok().filter(|&t| t != 0).ok_or_else(|| {
            Error::protocol(format!("{what}'s timeline \"{tli_text}\" is invalid"))
        })?;
    Ok((lsn, TimelineId(tli)))
}

fn tablespaces(res: &QueryResult) -> Result<Vec<Tablespace>> {
    if res.columns.len() < 3 {
        return Err(Error::protocol(format!(
            "the tablespace list has {} columns, expected 3",
            res.columns.len()
        )));
    }
    res.rows
        .iter()
        .map(|row| {
            let what = "a tablespace's";
            let oid = col(row, 0, what)?
                .map(|s| {
                    s.parse::<u32>()
                        .map_err(|_| Error::protocol(format!("tablespace oid \"{s}\" is invalid")))
                })
                .transpose()?;
            let location = col(row, 1, what)?.map(str::to_owned);
            let size_kb = col(row, 2, what)?
                .map(|s| {
                    s.parse::<u64>()
                        .map_err(|_| Error::protocol(format!("tablespace size \"{s}\" is invalid")))
                })
                .transpose()?;
            if oid.is_some() != location.is_some() {
                return Err(Error::protocol(
                    "a tablespace has an oid without a location, or the reverse",
                ));
            }
            Ok(Tablespace {
                oid,
                location,
                size_kb,
            })
        })
        .collect()
}
