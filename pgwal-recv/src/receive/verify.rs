//! `--verify`: every record checked as it arrives, before its bytes are reported flushed.

use pgwire_repl::wal::{Event as WalEvent, RecordInfo, WalDecoder};
use pgwire_repl::{Lsn, XLogData};

use super::Settings;
use crate::observe::monitor::Monitor;
use crate::stream::StreamError;

/// `--verify`: the library's WAL decoder over the stream, from the segment start it begins at.
pub(super) struct Checker {
    decoder: WalDecoder,
    /// The end of the last record checked: what may be reported flushed.
    pub(super) checked: Lsn,
    /// A message's records, handed to the monitor together.
    records: Vec<RecordInfo>,
}

impl Checker {
    pub(super) fn new(s: &Settings<'_>, start: Lsn) -> Checker {
        let mut decoder = WalDecoder::new(s.seg, start);
        decoder.expect_system_id(s.system_id);
        Checker {
            decoder,
            checked: start,
            records: Vec::new(),
        }
    }

    /// Feeds one XLogData, counting its records for the metrics; a record that fails its
    /// checks, or WAL that ends (the server never sends zeros), ends the program with the
    /// LSN and the reason.
    pub(super) fn check(&mut self, x: &XLogData, monitor: &Monitor) -> Result<(), StreamError> {
        if x.wal_start != self.decoder.position() {
            // A gap or an overlap in the stream: the writer reports it in its own words.
            return Ok(());
        }
        let mut ended = None;
        let records = &mut self.records;
        records.clear();
        let fed = self.decoder.feed(&x.data, &mut |ev| match ev {
            WalEvent::Record(r) => records.push(r),
            WalEvent::End(e) => ended = Some(e),
            _ => {}
        });
        if let Some(last) = self.records.last() {
            self.checked = last.end;
        }
        monitor.records(&self.records);
        if let Err(e) = fed {
            return Err(StreamError::fatal(format!(
                "WAL received from the server fails verification: {e}"
            )));
        }
        if let Some(e) = ended {
            return Err(StreamError::fatal(format!(
                "WAL received from the server fails verification: it ends at {} (zeros at {})",
                e.lsn, e.found_at
            )));
        }
        Ok(())
    }
}
