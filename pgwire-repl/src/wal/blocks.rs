//! The block references and data headers after a record's `XLogRecord`, walked as
//! `DecodeXLogRecord` (`src/backend/access/transam/xlogreader.c`) walks them, but fed piece
//! by piece: only the field being read is held (at most 12 bytes, a `RelFileLocator`), so
//! nothing that a record declares decides how much is kept.
//!
//! Layout (`src/include/access/xlogrecord.h`, "The overall layout of an XLOG record"):
//!
//! ```text
//! XLogRecord
//! XLogRecordBlockHeader, for each block (ids 0..=XLR_MAX_BLOCK_ID, increasing)
//!     uint8 id; uint8 fork_flags; uint16 data_length
//!     [XLogRecordBlockImageHeader  if BKPBLOCK_HAS_IMAGE: uint16 length, uint16 hole_offset, uint8 bimg_info]
//!     [XLogRecordBlockCompressHeader  if the image is compressed and has a hole: uint16 hole_length]
//!     [RelFileLocator  unless BKPBLOCK_SAME_REL: 3 × Oid]
//!     BlockNumber
//! XLR_BLOCK_ID_ORIGIN (253) + RepOriginId (uint16), XLR_BLOCK_ID_TOPLEVEL_XID (252, 14+) + TransactionId
//! XLogRecordDataHeaderShort (255 + uint8 length) or XLogRecordDataHeaderLong (254 + uint32 length)
//! block data (images, then data, per block), then the main data
//! ```
//!
//! `DecodeXLogRecord` reads headers `while (remaining > datatotal)`, the data header being
//! last "by convention", and then requires `remaining == datatotal`: the declared lengths
//! must add up to `xl_tot_len` exactly.

use super::error::WalErrorKind;
use super::version::{BkpImageBits, WalVersion};

/// `XLR_MAX_BLOCK_ID`.
const XLR_MAX_BLOCK_ID: u8 = 32;
const XLR_BLOCK_ID_DATA_SHORT: u8 = 255;
const XLR_BLOCK_ID_DATA_LONG: u8 = 254;
const XLR_BLOCK_ID_ORIGIN: u8 = 253;
const XLR_BLOCK_ID_TOPLEVEL_XID: u8 = 252;

const BKPBLOCK_HAS_IMAGE: u8 = 0x10;
const BKPBLOCK_HAS_DATA: u8 = 0x20;
const BKPBLOCK_SAME_REL: u8 = 0x80;

/// `BLCKSZ`: the data page size that full-page images are cut from.
const BLCKSZ: u16 = 8192;

/// The field being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    /// A block id or special id (1 byte).
    Id,
    /// `XLogRecordDataHeaderShort`'s length (1).
    ShortLen,
    /// `XLogRecordDataHeaderLong`'s length (4).
    LongLen,
    /// `RepOriginId` (2).
    Origin,
    /// The top-level `TransactionId` (4).
    ToplevelXid,
    /// `fork_flags` and `data_length` (3).
    Block,
    /// `XLogRecordBlockImageHeader` (5).
    Image,
    /// `XLogRecordBlockCompressHeader` (2).
    HoleLength,
    /// `RelFileLocator` (12).
    Rel,
    /// `BlockNumber` (4).
    BlockNumber,
    /// Headers done: the rest is data.
    Done,
}

impl Field {
    fn size(self) -> u32 {
        match self {
            Field::Id | Field::ShortLen => 1,
            Field::Origin | Field::HoleLength => 2,
            Field::Block => 3,
            Field::LongLen | Field::ToplevelXid | Field::BlockNumber => 4,
            Field::Image => 5,
            Field::Rel => 12,
            Field::Done => 0,
        }
    }
}

/// The walk through one record's headers.
#[derive(Debug, Clone)]
pub(crate) struct BlockWalker {
    bits: BkpImageBits,
    toplevel_xid: bool,
    field: Field,
    buf: [u8; 12],
    have: u8,
    /// `remaining`: record bytes after `XLogRecord` not yet read as headers.
    remaining: u32,
    /// `datatotal`: the data the headers read so far declare (u64: a long data header may
    /// declare up to 4 GiB on top of the blocks').
    datatotal: u64,
    /// The highest block id seen (`max_block_id`), none yet at first.
    max_block_id: Option<u8>,
    /// Whether a block header has named a relation (`rlocator != NULL`).
    have_rel: bool,
    /// The block being read.
    fork_flags: u8,
    bimg_len: u16,
    hole_offset: u16,
    bimg_info: u8,
    /// The sum of `bimg_len`.
    fpi_len: u32,
    /// The first problem found; the rest of the record is then only counted.
    failed: Option<WalErrorKind>,
}

impl BlockWalker {
    /// A walk through a record of `tot_len` bytes (at least `SizeOfXLogRecord`).
    pub fn new(version: WalVersion, tot_len: u32) -> BlockWalker {
        let mut w = BlockWalker {
            bits: version.bkpimage(),
            toplevel_xid: version.has_toplevel_xid(),
            field: Field::Id,
            buf: [0; 12],
            have: 0,
            remaining: tot_len.saturating_sub(super::record::SIZE_OF_XLOG_RECORD as u32),
            datatotal: 0,
            max_block_id: None,
            have_rel: false,
            fork_flags: 0,
            bimg_len: 0,
            hole_offset: 0,
            bimg_info: 0,
            fpi_len: 0,
            failed: None,
        };
        w.settle();
        w
    }

    /// Whether the headers are read (or a problem found): all further bytes are data.
    pub fn is_done(&self) -> bool {
        self.field == Field::Done
    }

    /// Reads headers from the front of `data`, the record's next bytes; returns how many
    /// it took (the rest, if any, is data).
    pub fn feed(&mut self, data: &[u8]) -> usize {
        let mut used = 0;
        while self.field != Field::Done && used < data.len() {
            let need = self.field.size() as usize;
            let take = (need - usize::from(self.have)).min(data.len() - used);
            let have = usize::from(self.have);
            self.buf[have..have + take].copy_from_slice(&data[used..used + take]);
            self.have += take as u8;
            used += take;
            if usize::from(self.have) == need {
                self.have = 0;
                self.remaining -= need as u32;
                self.field_read();
                self.settle();
            }
        }
        used
    }

    /// After the whole record was fed: the block images' total length, or what was wrong.
    pub fn finish(&self) -> Result<u32, WalErrorKind> {
        match (&self.failed, self.field) {
            (Some(e), _) => Err(e.clone()),
            (None, Field::Done) => Ok(self.fpi_len),
            // Bytes a field needed never came: the record ended first.
            (None, _) => Err(WalErrorKind::InvalidLength),
        }
    }

    fn fail(&mut self, e: WalErrorKind) {
        self.failed = Some(e);
        self.field = Field::Done;
    }

    /// Decides what comes next without reading: the end of the headers when no more are
    /// due (`while (remaining > datatotal)`), a short record when a due field cannot fit
    /// (`COPY_HEADER_FIELD`'s `if (remaining < _size) goto shortdata_err`).
    fn settle(&mut self) {
        if self.field == Field::Id && u64::from(self.remaining) <= self.datatotal {
            self.end_of_headers();
            return;
        }
        if self.field != Field::Done && self.remaining < self.field.size() {
            self.fail(WalErrorKind::InvalidLength);
        }
    }

    /// `if (remaining != datatotal) goto shortdata_err;`
    fn end_of_headers(&mut self) {
        if u64::from(self.remaining) != self.datatotal {
            self.fail(WalErrorKind::InvalidLength);
        } else {
            self.field = Field::Done;
        }
    }

    fn u16_at(&self, i: usize) -> u16 {
        u16::from_le_bytes([self.buf[i], self.buf[i + 1]])
    }

    fn u32_at(&self, i: usize) -> u32 {
        u32::from_le_bytes([
            self.buf[i],
            self.buf[i + 1],
            self.buf[i + 2],
            self.buf[i + 3],
        ])
    }

    /// Acts on a field just read into `buf`.
    fn field_read(&mut self) {
        match self.field {
            Field::Id => {
                let id = self.buf[0];
                self.field = match id {
                    XLR_BLOCK_ID_DATA_SHORT => Field::ShortLen,
                    XLR_BLOCK_ID_DATA_LONG => Field::LongLen,
                    XLR_BLOCK_ID_ORIGIN => Field::Origin,
                    XLR_BLOCK_ID_TOPLEVEL_XID if self.toplevel_xid => Field::ToplevelXid,
                    id if id <= XLR_MAX_BLOCK_ID => {
                        if self.max_block_id.is_some_and(|max| id <= max) {
                            return self.fail(WalErrorKind::OutOfOrderBlock { block_id: id });
                        }
                        self.max_block_id = Some(id);
                        Field::Block
                    }
                    _ => return self.fail(WalErrorKind::InvalidBlockId { block_id: id }),
                };
            }
            // "by convention, the main data fragment is always last"
            Field::ShortLen => {
                self.datatotal += u64::from(self.buf[0]);
                self.end_of_headers();
            }
            Field::LongLen => {
                self.datatotal += u64::from(self.u32_at(0));
                self.end_of_headers();
            }
            Field::Origin | Field::ToplevelXid => self.field = Field::Id,
            Field::Block => {
                self.fork_flags = self.buf[0];
                let data_len = self.u16_at(1);
                let has_data = self.fork_flags & BKPBLOCK_HAS_DATA != 0;
                // "cross-check that the HAS_DATA flag is set iff data_length > 0"
                if has_data && data_len == 0 {
                    return self.fail(WalErrorKind::HasDataWithoutData);
                }
                if !has_data && data_len != 0 {
                    return self.fail(WalErrorKind::DataWithoutHasData { data_len });
                }
                self.datatotal += u64::from(data_len);
                if self.fork_flags & BKPBLOCK_HAS_IMAGE != 0 {
                    self.field = Field::Image;
                } else {
                    self.after_image();
                }
            }
            Field::Image => {
                self.bimg_len = self.u16_at(0);
                self.hole_offset = self.u16_at(2);
                self.bimg_info = self.buf[4];
                let compressed = self.bimg_info & self.bits.compressed != 0;
                if compressed && self.bimg_info & self.bits.has_hole != 0 {
                    self.field = Field::HoleLength;
                } else if compressed {
                    self.check_image(0);
                } else {
                    // hole_length is a uint16: BLCKSZ - bimg_len wraps as in C.
                    self.check_image(BLCKSZ.wrapping_sub(self.bimg_len));
                }
            }
            Field::HoleLength => self.check_image(self.u16_at(0)),
            Field::Rel => {
                self.have_rel = true;
                self.field = Field::BlockNumber;
            }
            Field::BlockNumber => self.field = Field::Id,
            Field::Done => {}
        }
    }

    /// The image cross-checks of `DecodeXLogRecord`, in its order.
    fn check_image(&mut self, hole_length: u16) {
        let (bimg_len, hole_offset, info) = (self.bimg_len, self.hole_offset, self.bimg_info);
        let has_hole = info & self.bits.has_hole != 0;
        let compressed = info & self.bits.compressed != 0;
        self.datatotal += u64::from(bimg_len);
        self.fpi_len = self.fpi_len.saturating_add(u32::from(bimg_len));
        // "cross-check that hole_offset > 0, hole_length > 0 and bimg_len < BLCKSZ if the
        // HAS_HOLE flag is set"
        if has_hole && (hole_offset == 0 || hole_length == 0 || bimg_len == BLCKSZ) {
            return self.fail(WalErrorKind::HoleInvalid {
                hole_offset,
                hole_length,
                bimg_len,
            });
        }
        // "cross-check that hole_offset == 0 and hole_length == 0 if the HAS_HOLE flag is
        // not set"
        if !has_hole && (hole_offset != 0 || hole_length != 0) {
            return self.fail(WalErrorKind::HoleWithoutFlag {
                hole_offset,
                hole_length,
            });
        }
        // "Cross-check that bimg_len < BLCKSZ if it is compressed"
        if compressed && bimg_len == BLCKSZ {
            return self.fail(WalErrorKind::CompressedFullPage { bimg_len });
        }
        // "cross-check that bimg_len = BLCKSZ if neither HAS_HOLE is set nor COMPRESSED()"
        if !has_hole && !compressed && bimg_len != BLCKSZ {
            return self.fail(WalErrorKind::ImageLength { bimg_len });
        }
        self.after_image();
    }

    fn after_image(&mut self) {
        if self.fork_flags & BKPBLOCK_SAME_REL == 0 {
            self.field = Field::Rel;
        } else if !self.have_rel {
            self.fail(WalErrorKind::SameRelWithoutRel);
        } else {
            self.field = Field::BlockNumber;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(major: u32) -> WalVersion {
        WalVersion::from_major(major).unwrap()
    }

    /// Walks `body` (the bytes after XLogRecord) fed one byte at a time and whole.
    fn walk(major: u32, body: &[u8]) -> Result<u32, WalErrorKind> {
        let tot = body.len() as u32 + 24;
        let mut whole = BlockWalker::new(v(major), tot);
        let used = whole.feed(body);
        assert!(whole.is_done() || used == body.len());
        let mut bytes = BlockWalker::new(v(major), tot);
        for b in body {
            bytes.feed(std::slice::from_ref(b));
        }
        assert_eq!(whole.finish(), bytes.finish());
        whole.finish()
    }

    /// A block header: id, fork_flags, data_len, then `rest`.
    fn block(id: u8, flags: u8, data_len: u16, rest: &[u8]) -> Vec<u8> {
        let mut b = vec![id, flags];
        b.extend_from_slice(&data_len.to_le_bytes());
        b.extend_from_slice(rest);
        b
    }

    const REL_BLKNO: [u8; 16] = [1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 7, 0, 0, 0];

    #[test]
    fn header_only_and_main_data() {
        assert_eq!(walk(16, &[]), Ok(0));
        assert_eq!(walk(16, &[255, 3, 1, 2, 3]), Ok(0));
        assert_eq!(walk(16, &[254, 2, 0, 0, 0, 9, 9]), Ok(0));
        // Main data shorter than declared, longer than declared.
        assert_eq!(walk(16, &[255, 3, 1, 2]), Err(WalErrorKind::InvalidLength));
        assert_eq!(walk(16, &[255, 1, 1, 2]), Err(WalErrorKind::InvalidLength));
        // A long header cut short.
        assert_eq!(walk(16, &[254, 2, 0]), Err(WalErrorKind::InvalidLength));
    }

    #[test]
    fn blocks_with_data_and_images() {
        let mut body = block(0, BKPBLOCK_HAS_DATA, 2, &REL_BLKNO);
        body.extend(block(
            3,
            BKPBLOCK_HAS_DATA | BKPBLOCK_SAME_REL,
            1,
            &7u32.to_le_bytes(),
        ));
        body.extend([255, 1]);
        body.extend([0xAA; 4]);
        assert_eq!(walk(16, &body), Ok(0));

        // An image with a hole (15+ bits: HAS_HOLE 0x01, APPLY 0x02).
        let mut img = Vec::new();
        img.extend(100u16.to_le_bytes()); // bimg_len
        img.extend(40u16.to_le_bytes()); // hole_offset
        img.push(0x03);
        img.extend(REL_BLKNO);
        let mut body = block(0, BKPBLOCK_HAS_IMAGE, 0, &img);
        body.extend([0x55; 100]);
        assert_eq!(walk(16, &body), Ok(100));

        // 0x04 is BKPIMAGE_COMPRESS_PGLZ from 15 (a compressed image without a hole), but
        // BKPIMAGE_APPLY in 13 and 14 (then an uncompressed image must be a whole page).
        let mut img = Vec::new();
        img.extend(100u16.to_le_bytes());
        img.extend(0u16.to_le_bytes());
        img.push(0x04);
        img.extend(REL_BLKNO);
        let mut body = block(0, BKPBLOCK_HAS_IMAGE, 0, &img);
        body.extend([0x55; 100]);
        assert_eq!(walk(15, &body), Ok(100));
        assert_eq!(
            walk(14, &body),
            Err(WalErrorKind::HoleWithoutFlag {
                hole_offset: 0,
                hole_length: 8092
            })
        );
        // In 14, 0x02 is compressed: a compressed image with a hole has its hole length.
        let mut img = Vec::new();
        img.extend(100u16.to_le_bytes());
        img.extend(40u16.to_le_bytes());
        img.push(0x03);
        img.extend(4000u16.to_le_bytes());
        img.extend(REL_BLKNO);
        let mut body = block(0, BKPBLOCK_HAS_IMAGE, 0, &img);
        body.extend([0x55; 100]);
        assert_eq!(walk(14, &body), Ok(100));
    }

    #[test]
    fn decode_errors() {
        let b0 = block(0, 0, 0, &REL_BLKNO);
        let mut twice = b0.clone();
        twice.extend(block(0, 0, 0, &REL_BLKNO));
        assert_eq!(
            walk(16, &twice),
            Err(WalErrorKind::OutOfOrderBlock { block_id: 0 })
        );
        assert_eq!(
            walk(16, &block(33, 0, 0, &REL_BLKNO)),
            Err(WalErrorKind::InvalidBlockId { block_id: 33 })
        );
        // TOPLEVEL_XID exists from 14.
        assert_eq!(walk(14, &[252, 1, 2, 3, 4]), Ok(0));
        assert_eq!(
            walk(13, &[252, 1, 2, 3, 4]),
            Err(WalErrorKind::InvalidBlockId { block_id: 252 })
        );
        assert_eq!(
            walk(16, &block(0, BKPBLOCK_HAS_DATA, 0, &REL_BLKNO)),
            Err(WalErrorKind::HasDataWithoutData)
        );
        assert_eq!(
            walk(16, &block(0, 0, 5, &REL_BLKNO)),
            Err(WalErrorKind::DataWithoutHasData { data_len: 5 })
        );
        assert_eq!(
            walk(16, &block(0, BKPBLOCK_SAME_REL, 0, &7u32.to_le_bytes())),
            Err(WalErrorKind::SameRelWithoutRel)
        );
        // An uncompressed image without a hole must be a whole page.
        let mut img = Vec::new();
        img.extend(100u16.to_le_bytes());
        img.extend(0u16.to_le_bytes());
        img.push(0x02);
        img.extend(REL_BLKNO);
        assert_eq!(
            walk(16, &block(0, BKPBLOCK_HAS_IMAGE, 0, &img)),
            Err(WalErrorKind::HoleWithoutFlag {
                hole_offset: 0,
                hole_length: 8092
            })
        );
    }
}
