//! Page headers: gathered when a piece ends inside one, validated as
//! `XLogReaderValidatePageHeader` does, and checked against the record in progress.

use super::*;

impl WalDecoder {
    /// Gathers and checks a page header.
    pub(super) fn page_header(
        &mut self,
        input: &[u8],
        on: &mut dyn FnMut(Event),
    ) -> Result<usize, WalError> {
        let have = usize::from(self.phdr_have);
        let page = self.pos - have as u64;
        let long = self.seg.offset_of(Lsn(page)) == 0;
        // The short header first: it says whether a long one follows.
        let need = if have < SHORT_HEADER {
            SHORT_HEADER
        } else {
            LONG_HEADER
        };
        let take = (need - have).min(input.len());
        self.phdr[have..have + take].copy_from_slice(&input[..take]);
        self.phdr_have += take as u8;
        if usize::from(self.phdr_have) < need {
            return Ok(take);
        }
        let mut short = [0u8; SHORT_HEADER];
        short.copy_from_slice(&self.phdr[..SHORT_HEADER]);
        let raw = RawPageHeader::decode(&short);
        if need == SHORT_HEADER {
            if short.iter().all(|&b| b == 0) {
                self.phdr_have = 0;
                self.found_end(page, EndReason::ZeroPage, on);
                return Ok(take);
            }
            self.pages
                .short(&raw, long)
                .map_err(|kind| self.err(page, kind))?;
            if raw.info & PageFlags::LONG_HEADER != 0 {
                // Come back for the other 16 bytes.
                return Ok(take);
            }
        }
        self.phdr_have = 0;
        let long_info = if need == LONG_HEADER {
            let mut rest = [0u8; LONG_HEADER - SHORT_HEADER];
            rest.copy_from_slice(&self.phdr[SHORT_HEADER..]);
            let info = LongPageInfo::decode(&rest);
            self.pages
                .long(&info)
                .map_err(|kind| self.err(page, kind))?;
            Some(info)
        } else {
            None
        };
        self.pages
            .address(page, &raw)
            .map_err(|kind| self.err(page, kind))?;
        let flags = PageFlags(raw.info);
        on(Event::Page(PageInfo {
            lsn: Lsn(page),
            tli: TimelineId(raw.tli),
            flags,
            rem_len: raw.rem_len,
            long: long_info,
        }));
        self.page_starts(page, need as u64, flags, raw.rem_len, on)?;
        Ok(take)
    }

    /// A valid page begins: checks it against the record in progress
    /// (`XLogDecodeNextRecord`'s continuation checks).
    fn page_starts(
        &mut self,
        page: u64,
        header: u64,
        flags: PageFlags,
        rem_len: u32,
        on: &mut dyn FnMut(Event),
    ) -> Result<(), WalError> {
        match self.rec {
            Rec::FirstPage | Rec::SkipCont { .. } => {
                // XLogFindNextRecord: "skip over potential continuation data, keeping in
                // mind that it may span multiple pages", trusting each page's xlp_rem_len.
                // With xlp_rem_len 0 the record it finds right after the header is then
                // refused: "contrecord is requested by".
                if !flags.is_contrecord() {
                    self.rec = Rec::Boundary;
                    return Ok(());
                }
                if rem_len == 0 {
                    return Err(self.err(page + header, WalErrorKind::ContrecordRequested));
                }
                self.rec = Rec::SkipCont { left: rem_len };
                Ok(())
            }
            Rec::Boundary => self.no_contrecord(page + header, flags),
            Rec::Header { .. } | Rec::Body { .. } => {
                // "If we were expecting a continuation record and got an "overwrite
                // contrecord" flag, that means the continuation record was overwritten
                // with a different record. Restart the read by assuming the address to
                // read is the location where we found this flag".
                if flags.is_overwrite_contrecord() {
                    on(Event::Overwritten(OverwrittenInfo {
                        lsn: Lsn(self.cur.lsn),
                        page: Lsn(page),
                    }));
                    self.rec = Rec::Boundary;
                    return self.no_contrecord(page + header, flags);
                }
                if !flags.is_contrecord() {
                    return Err(self.err(
                        self.cur.lsn,
                        WalErrorKind::NoContrecordFlag { page: Lsn(page) },
                    ));
                }
                // "Cross-check that xlp_rem_len agrees with how much of the record we
                // expect there to be left."
                let expected = self.cur.tot_len - self.cur.got(&self.rec);
                if rem_len == 0 || rem_len != expected {
                    return Err(self.err(
                        self.cur.lsn,
                        WalErrorKind::ContrecordLength {
                            rem_len,
                            expected,
                            page: Lsn(page),
                        },
                    ));
                }
                Ok(())
            }
        }
    }

    /// A record is due right after the page header: the page must not claim to continue
    /// one.
    pub(super) fn no_contrecord(&self, at: u64, flags: PageFlags) -> Result<(), WalError> {
        if flags.is_contrecord() {
            return Err(self.err(at, WalErrorKind::ContrecordRequested));
        }
        Ok(())
    }
}
