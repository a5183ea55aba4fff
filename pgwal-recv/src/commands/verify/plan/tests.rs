use super::*;

fn seg() -> WalSegmentSize {
    WalSegmentSize::new(16 << 20).unwrap()
}

fn f(name: &str) -> Listed {
    Listed {
        name: name.to_owned(),
        size: 16 << 20,
        modified: None,
    }
}

fn name(tli: u32, segno: u64) -> String {
    seg().file_name(TimelineId(tli), segno)
}

fn plan(names: &[String], histories: &[(u32, &[(u32, u64)])]) -> Plan {
    let listed: Vec<Listed> = names.iter().map(|n| f(n)).collect();
    let h = histories
        .iter()
        .map(|(t, entries)| {
            (
                TimelineId(*t),
                Ok(entries
                    .iter()
                    .map(|(tli, sp)| HistoryEntry {
                        timeline: TimelineId(*tli),
                        switchpoint: Lsn(*sp),
                        reason: String::new(),
                    })
                    .collect()),
            )
        })
        .collect();
    Plan::new(&listed, h, seg(), Range::default())
}

fn preds(p: &Plan) -> Vec<(String, Option<String>)> {
    p.files
        .iter()
        .map(|f| {
            (
                f.file.name.clone(),
                f.pred.map(|i| p.files[i].file.name.clone()),
            )
        })
        .collect()
}

#[test]
fn one_timeline_is_one_chain() {
    let p = plan(
        &[name(1, 3), name(1, 2), format!("{}.partial", name(1, 4))],
        &[],
    );
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    assert_eq!(
        preds(&p),
        [
            (name(1, 2), None),
            (name(1, 3), Some(name(1, 2))),
            (format!("{}.partial", name(1, 4)), Some(name(1, 3))),
        ]
    );
    assert!(p.files[0].has_succ && p.files[1].has_succ && !p.files[2].has_succ);
}

#[test]
fn a_switch_branches_from_the_old_timelines_segment() {
    // Timeline 2 begins inside segment 4 (0x4000100): the old timeline's 4 is a .partial,
    // the new one's 4 carries on from the old timeline's 3.
    let sp = (4u64 << 24) + 0x100;
    let p = plan(
        &[
            name(1, 3),
            format!("{}.partial", name(1, 4)),
            name(2, 4),
            name(2, 5),
        ],
        &[(2, &[(1, sp)])],
    );
    assert!(p.problems.is_empty(), "{:?}", p.problems);
    assert_eq!(
        preds(&p),
        [
            (name(1, 3), None),
            (format!("{}.partial", name(1, 4)), Some(name(1, 3))),
            (name(2, 4), Some(name(1, 3))),
            (name(2, 5), Some(name(2, 4))),
        ]
    );
    assert_eq!(p.timeline_at(TimelineId(2), Lsn(sp - 1)), TimelineId(1));
    assert_eq!(p.timeline_at(TimelineId(2), Lsn(sp)), TimelineId(2));
    assert_eq!(p.begins(TimelineId(2)), Lsn(sp));
}

#[test]
fn names_alone_show_gaps_duplicates_misplaced_partials_and_missing_histories() {
    let p = plan(
        &[
            name(1, 1),
            name(1, 2),
            name(1, 5),
            format!("{}.gz", name(1, 5)),
            format!("{}.partial", name(1, 6)),
            name(1, 7),
            name(3, 8),
        ],
        &[],
    );
    let msgs: Vec<String> = p
        .problems
        .iter()
        .map(|p| format!("{}: {}", p.file.as_deref().unwrap_or("-"), p.message))
        .collect();
    assert!(
        msgs.contains(&format!(
            "{}: segments {} to {} are missing before it",
            name(1, 5),
            name(1, 3),
            name(1, 4)
        )),
        "{msgs:#?}"
    );
    assert!(
        msgs.contains(&format!(
            "{}.gz: the same segment as {}",
            name(1, 5),
            name(1, 5)
        )),
        "{msgs:#?}"
    );
    assert!(
        msgs.contains(&format!(
            "{}.partial: a .partial segment before the end of timeline 1",
            name(1, 6)
        )),
        "{msgs:#?}"
    );
    assert!(
        msgs.contains(
            &"00000003.history: missing: timeline 3 has segments but no history file".to_owned()
        ),
        "{msgs:#?}"
    );
    // Timeline 3's segment 8 without a history: its predecessor would be its own 7.
    assert!(
        msgs.contains(&format!(
            "{}: segment {} is missing before it",
            name(3, 8),
            name(3, 7)
        )),
        "{msgs:#?}"
    );
}

#[test]
fn range_and_timeline_select_files() {
    let sp = (4u64 << 24) + 0x100;
    let names = [
        name(1, 3),
        format!("{}.partial", name(1, 4)),
        name(2, 4),
        name(2, 5),
    ];
    let listed: Vec<Listed> = names.iter().map(|n| f(n)).collect();
    let hist = || {
        [(
            TimelineId(2),
            Ok(vec![HistoryEntry {
                timeline: TimelineId(1),
                switchpoint: Lsn(sp),
                reason: String::new(),
            }]),
        )]
        .into_iter()
        .collect()
    };
    let only = |range| {
        Plan::new(&listed, hist(), seg(), range)
            .files
            .iter()
            .map(|f| f.file.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        only(Range {
            start: Some(4),
            end: Some(4),
            ..Range::default()
        }),
        [format!("{}.partial", name(1, 4)), name(2, 4)]
    );
    // Timeline 1 alone: timeline 2's files go.
    assert_eq!(
        only(Range {
            timeline: Some(TimelineId(1)),
            ..Range::default()
        }),
        [name(1, 3), format!("{}.partial", name(1, 4))]
    );
    // Timeline 2 with its ancestor's files.
    assert_eq!(
        only(Range {
            timeline: Some(TimelineId(2)),
            ..Range::default()
        })
        .len(),
        4
    );
}
