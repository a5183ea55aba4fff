//! The decoder against WAL written by [`WalBuilder`], valid and then damaged one way at a
//! time.

use super::*;
use crate::lsn::{Lsn, TimelineId, WalSegmentSize};

const SYSID: u64 = 7_300_000_000_000_000_001;

mod damage;

fn seg() -> WalSegmentSize {
    WalSegmentSize::new(1 << 20).unwrap()
}

fn v(major: u32) -> WalVersion {
    WalVersion::from_major(major).unwrap()
}

/// Segment 1 (LSN 0/100000) of a 1 MiB-segment cluster.
fn builder(major: u32) -> WalBuilder {
    WalBuilder::new(v(major), seg(), Lsn(1 << 20), SYSID)
}

/// Decodes `bytes` from `start` in pieces of `piece` bytes.
fn decode_in(start: Lsn, bytes: &[u8], piece: usize) -> (Vec<Event>, Result<(), WalError>) {
    let mut d = WalDecoder::new(seg(), start);
    let mut events = Vec::new();
    for chunk in bytes.chunks(piece.max(1)) {
        if let Err(e) = d.feed(chunk, &mut |e| events.push(e)) {
            return (events, Err(e));
        }
    }
    (events, Ok(()))
}

fn decode(start: Lsn, bytes: &[u8]) -> (Vec<Event>, Result<(), WalError>) {
    decode_in(start, bytes, bytes.len())
}

fn records(events: &[Event]) -> Vec<RecordInfo> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Record(r) => Some(*r),
            _ => None,
        })
        .collect()
}

fn err_of(start: Lsn, bytes: &[u8]) -> WalError {
    decode(start, bytes).1.unwrap_err()
}

/// A heap-insert-like record: one block with data, some main data.
fn small(xid: u32) -> RecordSpec<'static> {
    const BLOCKS: [BlockSpec<'static>; 1] = [BlockSpec {
        id: 0,
        fork: 0,
        will_init: false,
        rel: [1663, 5, 16384],
        blkno: 3,
        data: &[0x11; 60],
        image: None,
    }];
    RecordSpec {
        rmid: 10,
        info: 0x00,
        xid,
        blocks: &BLOCKS,
        main_data: &[0x22; 3],
        ..Default::default()
    }
}

/// A record of about `len` bytes of main data (crosses pages when large).
fn big(main: &[u8]) -> RecordSpec<'_> {
    RecordSpec {
        rmid: 1,
        info: 0x00,
        xid: 9,
        main_data: main,
        ..Default::default()
    }
}

/// Offset of `lsn` in a builder's bytes.
fn at(lsn: Lsn) -> usize {
    (lsn.0 - (1 << 20)) as usize
}

/// A stream of every kind of record, for every version: small records, a record with
/// two full-page images (one with a hole, one compressed), records crossing pages and the
/// segment boundary, a switch, records in the next segment and the end of WAL.
fn mixed(major: u32) -> (WalBuilder, Vec<Lsn>, Lsn) {
    let mut b = builder(major);
    let mut lsns = Vec::new();
    let page_a = [0x5Au8; 8192 - 100];
    let page_b = [0xA5u8; 700];
    let images = [
        BlockSpec {
            id: 0,
            rel: [1663, 5, 16384],
            blkno: 1,
            image: Some(ImageSpec {
                bytes: &page_a,
                hole_offset: 60,
                hole_length: 100,
                compressed: false,
                apply: true,
            }),
            ..Default::default()
        },
        BlockSpec {
            id: 2,
            rel: [1663, 5, 16384],
            blkno: 2,
            data: &[1, 2, 3],
            image: Some(ImageSpec {
                bytes: &page_b,
                hole_offset: 40,
                hole_length: 4000,
                compressed: true,
                apply: false,
            }),
            ..Default::default()
        },
    ];
    for i in 0..20 {
        lsns.push(b.record(&small(100 + i)));
    }
    lsns.push(b.record(&RecordSpec {
        rmid: 9,
        info: 0x10,
        xid: 7,
        blocks: &images,
        main_data: &[0; 40],
        origin: Some(3),
        toplevel_xid: Some(5),
    }));
    let main = vec![0xEEu8; 20_000];
    lsns.push(b.record(&big(&main)));
    // Up to the segment's last page, then a record across the segment boundary.
    while b.position().0 < (2 << 20) - 9000 {
        lsns.push(b.record(&big(&main[..3000])));
    }
    lsns.push(b.record(&big(&main)));
    lsns.push(b.record(&small(1)));
    let switch = b.switch();
    lsns.push(switch);
    for i in 0..3 {
        lsns.push(b.record(&small(i)));
    }
    b.zeros(100);
    let end = b.position();
    (b, lsns, end)
}

#[test]
fn every_version_decodes_what_it_wrote() {
    for major in 13..=18 {
        let (b, lsns, _) = mixed(major);
        let (events, res) = decode(Lsn(1 << 20), b.bytes());
        res.unwrap_or_else(|e| panic!("{major}: {e}"));
        let recs = records(&events);
        assert_eq!(
            recs.iter().map(|r| r.lsn).collect::<Vec<_>>(),
            lsns,
            "{major}"
        );
        assert_eq!(recs[0].rmgr_name, "Heap");
        assert_eq!(recs[0].prev, Lsn(0));
        for w in recs.windows(2) {
            assert_eq!(w[1].prev, w[0].lsn);
            assert!(w[1].lsn >= w[0].end);
        }
        let fpi = &recs[20];
        assert_eq!((fpi.rmgr_name, fpi.fpi_len), ("Heap2", 8092 + 700));
        assert_eq!(fpi.rec_len(), fpi.tot_len - 8792);
        let switch = recs.iter().find(|r| r.is_switch).unwrap();
        assert_eq!((switch.rmgr_name, switch.end), ("XLOG", Lsn(3 << 20)));
        assert_eq!(recs.last().unwrap().rmgr_name, "Heap");
        // A page event for every page but those after the switch; both long headers.
        let pages: Vec<PageInfo> = events
            .iter()
            .filter_map(|e| match e {
                Event::Page(p) => Some(*p),
                _ => None,
            })
            .collect();
        let switch_page = switch.lsn.0 / 8192 * 8192;
        assert!(pages
            .iter()
            .all(|p| p.lsn.0 <= switch_page || p.lsn.0 >= 3 << 20));
        let longs: Vec<_> = pages.iter().filter_map(|p| p.long).collect();
        assert_eq!(longs.len(), 3);
        assert!(longs
            .iter()
            .all(|l| l.system_id == SYSID && l.seg_size == 1 << 20));
        assert!(matches!(
            events.last(),
            Some(Event::End(EndInfo {
                why: EndReason::ZeroRecord,
                ..
            }))
        ));
    }
}

#[test]
fn version_comes_from_the_first_page() {
    let (b, _, _) = mixed(14);
    let mut d = WalDecoder::new(seg(), Lsn(1 << 20));
    assert_eq!(d.version(), None);
    d.feed(&b.bytes()[..100], &mut |_| {}).unwrap();
    assert_eq!(d.version(), Some(v(14)));
    assert_eq!(d.system_id(), Some(SYSID));
    assert_eq!(d.position(), Lsn((1 << 20) + 100));
}

#[test]
fn any_split_gives_the_same_events() {
    // Three pages: records across both page boundaries, one header split across one.
    let mut b = builder(16);
    let main = [0x33u8; 5000];
    b.record(&big(&main));
    while b.position().0 % 8192 < 8192 - 200 {
        b.record(&small(1));
    }
    // Pad so that the next header starts 8 bytes before the page end.
    let room = 8192 - b.position().0 % 8192 - 8;
    let filler = vec![0u8; room as usize - 24 - 5];
    b.record(&big(&filler));
    assert_eq!(b.position().0 % 8192, 8192 - 8);
    b.record(&small(2));
    b.record(&big(&main));
    b.zeros(64);
    let bytes = b.bytes();
    let (whole, res) = decode(Lsn(1 << 20), bytes);
    res.unwrap();
    assert!(matches!(whole.last(), Some(Event::End(_))));
    for split in 0..bytes.len() {
        let mut d = WalDecoder::new(seg(), Lsn(1 << 20));
        let mut events = Vec::new();
        d.feed(&bytes[..split], &mut |e| events.push(e)).unwrap();
        d.feed(&bytes[split..], &mut |e| events.push(e)).unwrap();
        assert_eq!(events, whole, "split at {split}");
    }
    for piece in [1, 3, 7, 24, 100, 8191] {
        let (events, res) = decode_in(Lsn(1 << 20), bytes, piece);
        res.unwrap();
        assert_eq!(events, whole, "pieces of {piece}");
    }
}

#[test]
fn switch_skips_the_rest_of_the_segment_unread() {
    let mut b = builder(13);
    b.record(&small(1));
    let switch = b.switch();
    let after = b.record(&small(2));
    let mut bytes = b.bytes().to_vec();
    // Garbage in the padding is not looked at (servers before 14 leave page headers).
    for x in &mut bytes[at(switch) + 24..1 << 20] {
        *x = 0xFF;
    }
    let (events, res) = decode(Lsn(1 << 20), &bytes);
    res.unwrap();
    let recs = records(&events);
    assert_eq!(recs[1].end, Lsn(2 << 20));
    assert_eq!((recs[2].lsn, recs[2].prev), (after, switch));
}

#[test]
fn end_of_wal_mid_segment() {
    // Zeros where a record is due.
    let mut b = builder(16);
    b.record(&small(1));
    let last = b.record(&small(2));
    b.zeros(5000);
    let (events, res) = decode(Lsn(1 << 20), b.bytes());
    res.unwrap();
    let Some(Event::End(end)) = events.last() else {
        panic!("{events:?}")
    };
    // 24 + block header 20 + data header 2 + 60 + 3 bytes, MAXALIGNed.
    let next = Lsn((last.0 + 109).next_multiple_of(8));
    assert_eq!(records(&events)[1].end, next);
    assert_eq!(
        (end.lsn, end.found_at, end.why),
        (next, next, EndReason::ZeroRecord)
    );

    // A record cut off by a zeroed page (a .partial written up to a page boundary).
    let mut b = builder(16);
    let done = b.record(&small(1));
    let main = [1u8; 9000];
    let cut = b.record(&big(&main));
    let mut bytes = b.bytes()[..8192].to_vec();
    bytes.resize(3 * 8192, 0);
    let mut d = WalDecoder::new(seg(), Lsn(1 << 20));
    let mut events = Vec::new();
    d.feed(&bytes, &mut |e| events.push(e)).unwrap();
    let end = d.end().unwrap();
    assert_eq!(records(&events).len(), 1);
    assert!(cut > done);
    assert_eq!(
        (end.lsn, end.found_at, end.why),
        (cut, Lsn((1 << 20) + 8192), EndReason::ZeroPage)
    );
    // Later bytes are ignored, and counted.
    d.feed(&[0xFF; 10], &mut |e| events.push(e)).unwrap();
    assert_eq!(d.position(), Lsn((1 << 20) + 3 * 8192 + 10));
    assert_eq!(
        events.iter().filter(|e| matches!(e, Event::End(_))).count(),
        1
    );
}

#[test]
fn overwritten_contrecord() {
    let mut b = builder(16);
    let good = b.record(&small(1));
    let main = [1u8; 9000];
    let lost = b.abandoned_record(&big(&main));
    let over = b.record(&RecordSpec {
        rmid: RM_XLOG_ID,
        info: XLOG_OVERWRITE_CONTRECORD,
        main_data: &[0; 16],
        ..Default::default()
    });
    assert_eq!(over.0, (1 << 20) + 8192 + 24);
    let (events, res) = decode(Lsn(1 << 20), b.bytes());
    res.unwrap();
    assert!(events.contains(&Event::Overwritten(OverwrittenInfo {
        lsn: lost,
        page: Lsn((1 << 20) + 8192)
    })));
    let recs = records(&events);
    assert_eq!((recs[1].lsn, recs[1].prev), (over, good));
}

#[test]
fn start_on_a_page_inside_a_record() {
    let mut b = builder(16);
    let main = [1u8; 20_000];
    b.record(&big(&main));
    let next = b.record(&small(1));
    // From the second page: a continuation to skip (two pages of it), as pg_waldump does.
    let (events, res) = decode(Lsn((1 << 20) + 8192), &b.bytes()[8192..]);
    res.unwrap();
    let recs = records(&events);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].lsn, next);
    // The flag with nothing to continue: the record right after the header is refused.
    let mut bytes = b.bytes()[8192..].to_vec();
    bytes[16..20].copy_from_slice(&0u32.to_le_bytes());
    let e = err_of(Lsn((1 << 20) + 8192), &bytes);
    assert_eq!(
        (e.lsn, e.kind),
        (
            Lsn((1 << 20) + 8192 + 24),
            WalErrorKind::ContrecordRequested
        )
    );
}

#[test]
fn start_inside_a_page() {
    let mut b = builder(16);
    b.record(&small(1));
    let second = b.record(&small(2));
    let tail = &b.bytes()[at(second)..];
    let e = err_of(second, tail);
    assert_eq!(e.kind, WalErrorKind::VersionUnknown);
    let mut d = WalDecoder::new(seg(), second);
    d.set_version(v(16));
    let mut events = Vec::new();
    d.feed(tail, &mut |e| events.push(e)).unwrap();
    assert_eq!(records(&events)[0].lsn, second);
    // Inside the page header is no record start.
    let mut d = WalDecoder::new(seg(), Lsn((1 << 20) + 8192 + 16));
    d.set_version(v(16));
    let e = d.feed(&[0; 8], &mut |_| {}).unwrap_err();
    assert_eq!(e.kind, WalErrorKind::InvalidRecordOffset { offset: 16 });
}

#[test]
fn the_end_of_the_lsn_space() {
    // The last page of the LSN space ends at 2^64: a record ending there cannot be said.
    // A page that a record fills exactly, written elsewhere and moved there.
    let last_page = u64::MAX - 8191;
    let mut b = WalBuilder::new(v(16), seg(), Lsn((1 << 20) + 8192), SYSID);
    let main = vec![0u8; 8192 - 24 - 24 - 5];
    b.record(&big(&main));
    assert_eq!(b.bytes().len(), 8192);
    let mut page = b.bytes().to_vec();
    page[8..16].copy_from_slice(&last_page.to_le_bytes());
    let mut d = WalDecoder::new(seg(), Lsn(last_page));
    let e = d.feed(&page, &mut |_| {}).unwrap_err();
    assert_eq!(e.kind, WalErrorKind::LsnOverflow);
    // Any bytes past it, likewise.
    let mut d = WalDecoder::new(seg(), Lsn(u64::MAX - 7));
    d.set_version(v(16));
    assert!(d.feed(&[0; 16], &mut |_| {}).is_err());
}
