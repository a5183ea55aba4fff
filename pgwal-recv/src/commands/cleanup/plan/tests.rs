use pgwire_repl::Lsn;

use super::*;

fn seg() -> WalSegmentSize {
    WalSegmentSize::new(16 << 20).unwrap()
}

fn name(tli: u32, segno: u64) -> String {
    seg().file_name(TimelineId(tli), segno)
}

fn listed(names: &[String]) -> Vec<Listed> {
    names
        .iter()
        .map(|n| Listed {
            name: n.clone(),
            size: 1000,
            modified: None,
        })
        .collect()
}

/// A timeline's history as `(timeline, [(parent, switch segment, offset in it)])`.
type Hist<'a> = (u32, &'a [(u32, u64, u64)]);

fn histories(h: &[Hist<'_>]) -> BTreeMap<TimelineId, Vec<HistoryEntry>> {
    h.iter()
        .map(|(t, entries)| {
            let entries = entries
                .iter()
                .map(|&(parent, segno, offset)| HistoryEntry {
                    timeline: TimelineId(parent),
                    switchpoint: Lsn(seg().segment_start(segno).unwrap().0 + offset),
                    reason: String::new(),
                })
                .collect();
            (TimelineId(*t), entries)
        })
        .collect()
}

/// The names removed, in order, and the number kept.
fn removed(names: &[String], h: &[Hist<'_>], cut: u64) -> (Vec<String>, usize) {
    let r = plan(&listed(names), &histories(h), seg(), cut);
    (r.remove.into_iter().map(|f| f.name).collect(), r.kept)
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|n| (*n).to_owned()).collect()
}

#[test]
fn every_suffix_before_the_cut_goes() {
    let names = s(&[
        "000000010000000000000001",
        "000000010000000000000002.gz",
        "000000010000000000000003.lz4",
        "000000010000000000000004.zst",
        "000000010000000000000005",
        "000000010000000000000005.partial",
        "000000010000000000000006.zst",
        "000000010000000000000006.zst.partial",
        "000000010000000000000007.gz.partial",
        "000000010000000000000008",
        "000000010000000000000009.lz4.partial",
    ]);
    let (gone, kept) = removed(&names, &[], 7);
    assert_eq!(gone, names[..8].to_vec());
    assert_eq!(kept, 3);
    // The cut segment itself stays.
    let (gone, _) = removed(&names, &[], 5);
    assert_eq!(gone, names[..4].to_vec());
}

#[test]
fn nothing_below_the_oldest_segment_means_nothing_goes() {
    let names: Vec<String> = (3..8).map(|n| name(1, n)).collect();
    for cut in [0, 1, 3] {
        assert_eq!(removed(&names, &[], cut), (vec![], 5), "cut {cut}");
    }
}

#[test]
fn each_timelines_newest_segment_stays_whatever_the_cut() {
    let mut names: Vec<String> = (1..5).map(|n| name(1, n)).collect();
    names.push(format!("{}.zst", name(1, 5)));
    names.push(format!("{}.zst.partial", name(1, 5)));
    let (gone, kept) = removed(&names, &[], 1000);
    assert_eq!(gone, names[..4].to_vec());
    assert_eq!(kept, 2);
}

#[test]
fn two_timelines_cut_after_the_switch() {
    // Timeline 2 began in segment 6; timeline 1 ends with that segment as .partial, as
    // pg_receivewal leaves it.
    let mut names: Vec<String> = (1..6).map(|n| name(1, n)).collect();
    names.push(format!("{}.partial", name(1, 6)));
    names.extend((6..13).map(|n| name(2, n)));
    names.push("00000002.history".to_owned());
    let h: &[Hist<'_>] = &[(2, &[(1, 6, 0x2000)])];
    let (gone, kept) = removed(&names, h, 9);
    let mut want: Vec<String> = (1..6).map(|n| name(1, n)).collect();
    want.extend((6..9).map(|n| name(2, n)));
    assert_eq!(gone, want);
    // Timeline 1's .partial, timeline 2's 9 to 12, the history file.
    assert_eq!(kept, 6);
}

#[test]
fn two_timelines_cut_before_the_switch() {
    let mut names: Vec<String> = (1..6).map(|n| name(1, n)).collect();
    names.push(format!("{}.partial", name(1, 6)));
    names.extend((6..13).map(|n| name(2, n)));
    let h: &[Hist<'_>] = &[(2, &[(1, 6, 0x2000)])];
    let (gone, _) = removed(&names, h, 4);
    assert_eq!(gone, (1..4).map(|n| name(1, n)).collect::<Vec<_>>());
}

#[test]
fn a_timeline_keeps_its_files_from_where_a_newer_one_branched_off() {
    // The old primary went on writing timeline 1 past the switch into timeline 2 (segment 6):
    // its 6 and 7 are not timeline 1's newest, yet they stay; so does a .backup there.
    let mut names: Vec<String> = (1..9).map(|n| name(1, n)).collect();
    names.push(format!("{}.00000028.backup", name(1, 7)));
    names.extend((6..13).map(|n| name(2, n)));
    names.push("00000002.history".to_owned());
    let h: &[Hist<'_>] = &[(2, &[(1, 6, 0)])];
    let (gone, _) = removed(&names, h, 10);
    let mut want: Vec<String> = (1..6).map(|n| name(1, n)).collect();
    want.extend((6..10).map(|n| name(2, n)));
    want.sort_by_key(|n| seg().parse_file_name(n).map(|(t, s)| (s, t)));
    assert_eq!(gone, want);
    // Without the history file, nothing is known to branch off timeline 1.
    let (gone, _) = removed(&names, &[], 10);
    assert!(
        gone.contains(&name(1, 6)) && gone.contains(&name(1, 7)),
        "{gone:?}"
    );
    assert!(gone.contains(&format!("{}.00000028.backup", name(1, 7))));
    assert!(!gone.contains(&name(1, 8)), "timeline 1's newest");
}

#[test]
fn the_earliest_branch_counts_and_grandchildren_too() {
    // Timeline 3 left timeline 1 at segment 4 (its history names only timeline 1); timeline 2
    // left it at 6. Timeline 4 left 2 at 10, its history naming 1 and 2.
    let mut names: Vec<String> = (1..8).map(|n| name(1, n)).collect();
    names.extend((6..12).map(|n| name(2, n)));
    names.extend((4..6).map(|n| name(3, n)));
    names.extend((10..14).map(|n| name(4, n)));
    let h: &[Hist<'_>] = &[
        (2, &[(1, 6, 0)]),
        (3, &[(1, 4, 0)]),
        (4, &[(1, 6, 0), (2, 10, 0x100)]),
    ];
    let (gone, _) = removed(&names, h, 12);
    let mut want: Vec<String> = (1..4).map(|n| name(1, n)).collect();
    want.extend((6..10).map(|n| name(2, n)));
    want.push(name(3, 4));
    want.extend((10..12).map(|n| name(4, n)));
    want.sort_by_key(|n| seg().parse_file_name(n).map(|(t, s)| (s, t)));
    assert_eq!(gone, want);
}

#[test]
fn history_files_stay_and_other_files_are_untouched() {
    let mut names: Vec<String> = (1..5).map(|n| name(3, n)).collect();
    let others = s(&[
        "00000002.history",
        "00000003.history",
        ".pgwal-recv.lock",
        "00000003.history.tmp",
        "000000030000000000000001.tmp",
        "000000030000000000000001.partial.gz",
        "00000003000000000000000a",
        "000000030000000000000100",
        "000000030000000000000001.backup",
        "000000030000000000000001.0000002.backup",
        "notes.txt",
    ]);
    names.extend(others.iter().cloned());
    let (gone, kept) = removed(&names, &[], 100);
    assert_eq!(gone, (1..4).map(|n| name(3, n)).collect::<Vec<_>>());
    // The newest segment and the two history files; the rest is not counted.
    assert_eq!(kept, 3);
}

#[test]
fn backup_files_before_the_cut_go() {
    let mut names: Vec<String> = (1..8).map(|n| name(1, n)).collect();
    let old = format!("{}.00000028.backup", name(1, 2));
    let at_cut = format!("{}.00000028.backup", name(1, 5));
    names.push(old.clone());
    names.push(at_cut.clone());
    let (gone, kept) = removed(&names, &[], 5);
    let mut want: Vec<String> = (1..5).map(|n| name(1, n)).collect();
    want.insert(2, old);
    assert_eq!(gone, want);
    assert_eq!(kept, 4);
    assert!(!gone.contains(&at_cut));
}

#[test]
fn kinds_of_names() {
    assert_eq!(
        parse_backup_name("000000010000000100000003.00000028.backup", seg()),
        Some((TimelineId(1), 256 + 3))
    );
    for bad in [
        "000000010000000100000003.0000028.backup",
        "000000010000000100000003.0000002a.backup",
        "000000010000000100000003.00000028.backup.gz",
        "000000010000000100000003",
    ] {
        assert_eq!(parse_backup_name(bad, seg()), None, "{bad}");
    }
    assert_eq!(Kind::of("00000001.history", seg()), Kind::History);
    assert_eq!(Kind::of(".pgwal-recv.lock", seg()), Kind::Other);
}
