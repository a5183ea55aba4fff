//! WAL damaged one way at a time: each is the error xlogreader would report, at its record
//! or page.

use super::*;

#[test]
fn flipped_byte_is_a_checksum_error_at_its_record() {
    let (b, lsns, _) = mixed(16);
    for (i, lsn) in [(3, lsns[3]), (21, lsns[21])] {
        let mut bytes = b.bytes().to_vec();
        // A byte of the body, past the header; for the big record on its second page.
        let off = if i == 21 {
            at(lsn) + 9000
        } else {
            at(lsn) + 30
        };
        bytes[off] ^= 0x40;
        let e = err_of(Lsn(1 << 20), &bytes);
        assert_eq!(e.lsn, lsn, "{e}");
        assert!(matches!(e.kind, WalErrorKind::Checksum { .. }), "{e}");
        assert!(e
            .to_string()
            .starts_with("incorrect resource manager data checksum in record at 0/00"));
    }
}

#[test]
fn wrong_prev_link() {
    let mut b = builder(15);
    b.record(&small(1));
    b.set_prev(Lsn(0x1234));
    let bad = b.record(&small(2));
    let e = err_of(Lsn(1 << 20), b.bytes());
    assert_eq!(
        (e.lsn, &e.kind),
        (bad, &WalErrorKind::IncorrectPrev { prev: Lsn(0x1234) })
    );
    assert_eq!(
        e.to_string(),
        format!(
            "record with incorrect prev-link 0/00001234 at 0/{:08X}",
            bad.0
        )
    );
}

#[test]
fn expected_prev_across_segments() {
    let (b, _, _) = mixed(17);
    let next = &b.bytes()[2 << 20..];
    // The third segment's first record follows the switch.
    let (events, _) = decode(Lsn(1 << 20), b.bytes());
    let switch = records(&events).iter().find(|r| r.is_switch).unwrap().lsn;
    let mut d = WalDecoder::new(seg(), Lsn(3 << 20));
    d.expect_prev(switch);
    d.feed(next, &mut |_| {}).unwrap();
    let mut d = WalDecoder::new(seg(), Lsn(3 << 20));
    d.expect_prev(Lsn(switch.0 - 8));
    let e = d.feed(next, &mut |_| {}).unwrap_err();
    assert!(matches!(e.kind, WalErrorKind::IncorrectPrev { .. }), "{e}");
    // The decoder is done: the same error again.
    assert_eq!(d.feed(&[0; 10], &mut |_| {}).unwrap_err(), e);
}

#[test]
fn page_header_damage() {
    let (b, lsns, _) = mixed(16);
    let page2 = 1usize << 13;
    let page = |off: usize| Lsn((1 << 20) + off as u64);
    let damaged = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut bytes = b.bytes().to_vec();
        f(&mut bytes);
        err_of(Lsn(1 << 20), &bytes)
    };
    // Magic of another version mid-stream.
    let e = damaged(&|w| w[page2..page2 + 2].copy_from_slice(&0xD110u16.to_le_bytes()));
    assert_eq!(e.lsn, page(page2));
    assert_eq!(
        e.to_string(),
        "invalid magic number D110 at LSN 0/00102000 (expected D113, PostgreSQL 16)"
    );
    // Unknown info bits; a long header mid-segment; no long header at the segment start.
    let e = damaged(&|w| w[page2 + 2] |= 0x10);
    assert!(
        matches!(e.kind, WalErrorKind::InvalidInfoBits { info: 0x11 }),
        "{e}"
    );
    let e = damaged(&|w| w[page2 + 2] |= 0x02);
    assert!(
        matches!(e.kind, WalErrorKind::UnexpectedLongHeader { .. }),
        "{e}"
    );
    let e = damaged(&|w| w[2] &= !0x02);
    assert!(
        matches!(e.kind, WalErrorKind::MissingLongHeader { .. }),
        "{e}"
    );
    // Long header fields.
    let e = damaged(&|w| w[34] = 0);
    assert!(
        matches!(e.kind, WalErrorKind::SegmentSizeMismatch { .. }),
        "{e}"
    );
    let e = damaged(&|w| w[37] = 0x40);
    assert!(
        matches!(e.kind, WalErrorKind::BlockSizeMismatch { found: 0x4000 }),
        "{e}"
    );
    let e = damaged(&|w| w[24] ^= 1);
    assert!(
        matches!(e.kind, WalErrorKind::SystemIdMismatch { .. }),
        "{e}"
    );
    assert!(e.to_string().contains("expected"), "{e}");
    // A page address from elsewhere (a recycled page).
    let e = damaged(&|w| w[page2 + 10] = 0x0F);
    assert_eq!(
        e.to_string(),
        "unexpected pageaddr 0/000F2000 at LSN 0/00102000"
    );
    // Missing contrecord flag and wrong xlp_rem_len on the big record's second page.
    let big_page = (at(lsns[21]) / 8192 + 1) * 8192;
    let e = damaged(&|w| w[big_page + 2] &= !0x01);
    assert_eq!(e.lsn, lsns[21]);
    assert!(
        matches!(e.kind, WalErrorKind::NoContrecordFlag { .. }),
        "{e}"
    );
    let e = damaged(&|w| w[big_page + 16] ^= 0x01);
    assert!(
        matches!(e.kind, WalErrorKind::ContrecordLength { .. }),
        "{e}"
    );
    // A contrecord flag where a record begins: the segment after the switch has none to
    // continue.
    let e = damaged(&|w| w[(2 << 20) + 2] |= 0x01);
    assert!(matches!(e.kind, WalErrorKind::ContrecordRequested), "{e}");
    assert_eq!(e.lsn, Lsn((3 << 20) + 40));
}

#[test]
fn timelines_never_go_back() {
    let mut b = builder(18);
    b.timeline(TimelineId(3));
    let main = [0u8; 9000];
    b.record(&big(&main));
    b.timeline(TimelineId(2));
    b.record(&big(&main));
    let e = err_of(Lsn(1 << 20), b.bytes());
    assert_eq!(
        e.to_string(),
        "out-of-sequence timeline ID 2 (after 3) at LSN 0/00104000"
    );
    // Going up is fine, and reported.
    let mut b = builder(18);
    b.record(&big(&main));
    b.timeline(TimelineId(2));
    b.record(&big(&main));
    let (events, res) = decode(Lsn(1 << 20), b.bytes());
    res.unwrap();
    let tlis: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            Event::Page(p) => Some(p.tli.0),
            _ => None,
        })
        .collect();
    assert_eq!(tlis, [1, 1, 2]);
}

#[test]
fn record_header_damage() {
    let mut b = builder(14);
    b.record(&small(1));
    let custom = b.raw_record(130, 0, 0, &[]);
    let e = err_of(Lsn(1 << 20), b.bytes());
    assert_eq!(
        (e.lsn, e.kind),
        (custom, WalErrorKind::InvalidRmgr { rmid: 130 })
    );
    // Custom resource managers from 15, named as pg_waldump names them.
    let mut b = builder(15);
    b.raw_record(130, 0, 0, &[]);
    let (events, res) = decode(Lsn(1 << 20), b.bytes());
    res.unwrap();
    assert_eq!(records(&events)[0].rmgr_name, "custom130");
    let mut b = builder(15);
    let bad = b.raw_record(22, 0, 0, &[]);
    let e = err_of(Lsn(1 << 20), b.bytes());
    assert_eq!(
        (e.lsn, e.kind),
        (bad, WalErrorKind::InvalidRmgr { rmid: 22 })
    );

    // xl_tot_len too small, too large.
    let mut b = builder(16);
    let r = b.record(&small(1));
    let mut bytes = b.bytes().to_vec();
    bytes[at(r)..at(r) + 4].copy_from_slice(&10u32.to_le_bytes());
    let e = err_of(Lsn(1 << 20), &bytes);
    assert_eq!(
        e.to_string(),
        format!(
            "invalid record length at 0/{:08X}: expected at least 24, got 10",
            r.0
        )
    );
    bytes[at(r)..at(r) + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let e = err_of(Lsn(1 << 20), &bytes);
    assert!(
        matches!(e.kind, WalErrorKind::RecordTooLong { tot_len: u32::MAX }),
        "{e}"
    );
}

#[test]
fn block_header_damage_after_the_crc() {
    // Two blocks with the same id, CRC right: DecodeXLogRecord's error.
    let blk = [0u8, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0];
    let mut body = blk.to_vec();
    body.extend(blk);
    let mut b = builder(16);
    let r = b.raw_record(10, 0, 1, &body);
    let e = err_of(Lsn(1 << 20), b.bytes());
    assert_eq!(
        (e.lsn, e.kind),
        (r, WalErrorKind::OutOfOrderBlock { block_id: 0 })
    );
    // Declared data longer than the record.
    let mut b = builder(16);
    let r = b.raw_record(10, 0, 1, &[255, 9, 1, 2]);
    let e = err_of(Lsn(1 << 20), b.bytes());
    assert_eq!(
        e.to_string(),
        format!("record with invalid length at 0/{:08X}", r.0)
    );
    // With the CRC wrong too, the CRC is what xlogreader reports first.
    let mut bytes = b.bytes().to_vec();
    bytes[at(r) + 20] ^= 1;
    assert!(matches!(
        err_of(Lsn(1 << 20), &bytes).kind,
        WalErrorKind::Checksum { .. }
    ));
}

#[test]
fn split_record_header() {
    let mut b = builder(13);
    let room = 8192 - 40 - 8;
    let filler = vec![0u8; room - 24 - 5];
    b.record(&big(&filler));
    let split = b.record(&small(4));
    assert_eq!(split.0 % 8192, 8192 - 8);
    b.record(&small(5));
    let (events, res) = decode(Lsn(1 << 20), b.bytes());
    res.unwrap();
    assert_eq!(records(&events)[1].lsn, split);
    // rmid is in the header's second half, on the next page.
    let mut bytes = b.bytes().to_vec();
    bytes[8192 + 24 + 9] = 99;
    let e = err_of(Lsn(1 << 20), &bytes);
    assert_eq!(
        (e.lsn, e.kind),
        (split, WalErrorKind::InvalidRmgr { rmid: 99 })
    );
}
