//! Properties of the decoder over generated input: arbitrary bytes never panic it; valid
//! WAL gives the same events however it is split; damaged WAL never panics it either.

use proptest::prelude::*;

use super::*;
use crate::lsn::{Lsn, WalSegmentSize};

fn seg() -> WalSegmentSize {
    WalSegmentSize::new(1 << 20).unwrap()
}

/// Feeds `bytes` cut at `cuts` (positions, any order, out of range ones clamped); returns
/// the events and the result.
fn feed_cut(
    d: &mut WalDecoder,
    bytes: &[u8],
    cuts: &[usize],
) -> (Vec<Event>, Result<(), WalError>) {
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c % (bytes.len() + 1)).collect();
    cuts.push(bytes.len());
    cuts.sort_unstable();
    let mut events = Vec::new();
    let mut from = 0;
    for to in cuts {
        if let Err(e) = d.feed(&bytes[from..to], &mut |e| events.push(e)) {
            return (events, Err(e));
        }
        from = to;
    }
    (events, Ok(()))
}

/// Valid WAL of `major`: records with the given main data sizes, from segment 1.
fn valid(major: u32, sizes: &[usize]) -> Vec<u8> {
    let version = WalVersion::from_major(major).unwrap();
    let mut b = WalBuilder::new(version, seg(), Lsn(1 << 20), 42);
    let data = vec![0x5Au8; sizes.iter().copied().max().unwrap_or(0)];
    let block = [BlockSpec {
        id: 1,
        rel: [1, 2, 3],
        data: &data[..data.len().min(100)],
        ..Default::default()
    }];
    for (i, &n) in sizes.iter().enumerate() {
        b.record(&RecordSpec {
            rmid: (i % 22) as u8,
            info: 0x10,
            xid: i as u32,
            blocks: if i % 3 == 0 { &block } else { &[] },
            main_data: &data[..n],
            ..Default::default()
        });
    }
    b.zeros(64);
    b.into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..20_000),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
        start_page in 0u64..300,
        offset in prop_oneof![Just(0u64), 0u64..8192],
        version in proptest::option::of(13u32..=18),
    ) {
        let mut d = WalDecoder::new(seg(), Lsn(start_page * 8192 + offset));
        if let Some(v) = version {
            d.set_version(WalVersion::from_major(v).unwrap());
        }
        let (_, res) = feed_cut(&mut d, &bytes, &cuts);
        if res.is_ok() {
            prop_assert_eq!(d.position().0, start_page * 8192 + offset + bytes.len() as u64);
        }
    }

    #[test]
    fn valid_wal_splits_anywhere(
        major in 13u32..=18,
        sizes in proptest::collection::vec(0usize..20_000, 1..12),
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
    ) {
        let bytes = valid(major, &sizes);
        let (whole, res) = feed_cut(&mut WalDecoder::new(seg(), Lsn(1 << 20)), &bytes, &[]);
        prop_assert!(res.is_ok(), "{:?}", res);
        let records = whole.iter().filter(|e| matches!(e, Event::Record(_))).count();
        prop_assert_eq!(records, sizes.len());
        prop_assert!(matches!(whole.last(), Some(Event::End(_))));
        let (split, res) = feed_cut(&mut WalDecoder::new(seg(), Lsn(1 << 20)), &bytes, &cuts);
        prop_assert!(res.is_ok());
        prop_assert_eq!(split, whole);
    }

    #[test]
    fn damaged_wal_never_panics(
        major in 13u32..=18,
        sizes in proptest::collection::vec(0usize..12_000, 1..8),
        at in any::<usize>(),
        garbage in proptest::collection::vec(any::<u8>(), 1..64),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut bytes = valid(major, &sizes);
        let at = at % bytes.len();
        let end = (at + garbage.len()).min(bytes.len());
        bytes[at..end].copy_from_slice(&garbage[..end - at]);
        let mut d = WalDecoder::new(seg(), Lsn(1 << 20));
        let (_, res) = feed_cut(&mut d, &bytes, &cuts);
        if let Err(e) = res {
            // Reported where the damage is or before it (a record starting earlier).
            prop_assert!(e.lsn.0 <= (1 << 20) + end as u64, "{}", e);
            prop_assert!(!e.to_string().is_empty());
        }
    }
}
