//! Replication command texts, and the parsing of their result sets.
//!
//! See <https://www.postgresql.org/docs/current/protocol-replication.html>.

use bytes::Bytes;

use super::{assert_protocol_err, result_set};
use crate::error::Error;
use crate::lsn::{Lsn, TimelineId};
use crate::protocol::command::{
    create_slot_command, drop_slot_command, parse_history, parse_show, quote_ident, show_command,
    start_replication_command, CreateSlotOptions, CreatedSlot, HistoryEntry, IdentifySystem,
    ReadSlot, TimelineHistory, TimelineSwitch,
};
use crate::protocol::query::QueryResult;
use crate::server_version::ServerVersion;

#[test]
fn create_slot_text_by_version() {
    let plain = CreateSlotOptions::default();
    let temp = CreateSlotOptions {
        temporary: true,
        reserve_wal: false,
    };
    let reserve = CreateSlotOptions {
        temporary: false,
        reserve_wal: true,
    };
    let both = CreateSlotOptions {
        temporary: true,
        reserve_wal: true,
    };
    let cases = [
        (plain, 140000, r#"CREATE_REPLICATION_SLOT "s1" PHYSICAL"#),
        (plain, 150000, r#"CREATE_REPLICATION_SLOT "s1" PHYSICAL"#),
        (
            temp,
            140000,
            r#"CREATE_REPLICATION_SLOT "s1" TEMPORARY PHYSICAL"#,
        ),
        (
            temp,
            150000,
            r#"CREATE_REPLICATION_SLOT "s1" TEMPORARY PHYSICAL"#,
        ),
        (
            reserve,
            140000,
            r#"CREATE_REPLICATION_SLOT "s1" PHYSICAL RESERVE_WAL"#,
        ),
        (
            reserve,
            149999,
            r#"CREATE_REPLICATION_SLOT "s1" PHYSICAL RESERVE_WAL"#,
        ),
        (
            reserve,
            150000,
            r#"CREATE_REPLICATION_SLOT "s1" PHYSICAL (RESERVE_WAL)"#,
        ),
        (
            both,
            140000,
            r#"CREATE_REPLICATION_SLOT "s1" TEMPORARY PHYSICAL RESERVE_WAL"#,
        ),
        (
            both,
            180000,
            r#"CREATE_REPLICATION_SLOT "s1" TEMPORARY PHYSICAL (RESERVE_WAL)"#,
        ),
    ];
    for (opts, version, expected) in cases {
        let version = Some(ServerVersion::from_num(version));
        assert_eq!(create_slot_command("s1", opts, version), expected);
    }
    // A server that did not say its version gets the syntax every version takes.
    assert_eq!(
        create_slot_command("s1", reserve, None),
        r#"CREATE_REPLICATION_SLOT "s1" PHYSICAL RESERVE_WAL"#
    );
}

#[test]
fn drop_slot_text() {
    assert_eq!(
        drop_slot_command("s1", false),
        r#"DROP_REPLICATION_SLOT "s1""#
    );
    assert_eq!(
        drop_slot_command("s1", true),
        r#"DROP_REPLICATION_SLOT "s1" WAIT"#
    );
}

#[test]
fn read_slot_text_and_refusal_before_15() {
    assert_eq!(
        ReadSlot::command("s1", Some(ServerVersion::from_num(150000))).unwrap(),
        r#"READ_REPLICATION_SLOT "s1""#
    );
    match ReadSlot::command("s1", Some(ServerVersion::from_num(140011))) {
        Err(Error::Config(m)) => {
            assert!(
                m.contains("READ_REPLICATION_SLOT") && m.contains("14.11"),
                "{m}"
            )
        }
        other => panic!("{other:?}"),
    }
    match ReadSlot::command("s1", None) {
        Err(Error::Config(m)) => assert!(m.contains("did not report its version"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn start_replication_text() {
    let start = Lsn(0x0300_0000);
    assert_eq!(
        start_replication_command(None, start, None),
        "START_REPLICATION PHYSICAL 0/3000000"
    );
    assert_eq!(
        start_replication_command(Some("s1"), start, None),
        r#"START_REPLICATION SLOT "s1" PHYSICAL 0/3000000"#
    );
    assert_eq!(
        start_replication_command(None, Lsn(0x16_B374_D848), Some(TimelineId(3))),
        "START_REPLICATION PHYSICAL 16/B374D848 TIMELINE 3"
    );
    assert_eq!(
        start_replication_command(Some("s1"), start, Some(TimelineId(2))),
        r#"START_REPLICATION SLOT "s1" PHYSICAL 0/3000000 TIMELINE 2"#
    );
}

#[test]
fn slot_names_are_quoted() {
    assert_eq!(quote_ident(r#"we"ird"#), r#""we""ird""#);
    assert_eq!(quote_ident("MixedCase"), r#""MixedCase""#);
    assert_eq!(
        drop_slot_command(r#"a"b"#, false),
        r#"DROP_REPLICATION_SLOT "a""b""#
    );
    assert_eq!(
        start_replication_command(Some(r#"""#), Lsn(0), None),
        r#"START_REPLICATION SLOT """" PHYSICAL 0/0"#
    );
}

#[test]
fn show_and_other_texts() {
    assert_eq!(
        show_command("wal_segment_size").unwrap(),
        "SHOW wal_segment_size"
    );
    for bad in ["", "a b", "x; DROP TABLE t", "\"q\"", "a\0"] {
        assert!(
            matches!(show_command(bad), Err(Error::Config(_))),
            "{bad:?}"
        );
    }
    assert_eq!(IdentifySystem::COMMAND, "IDENTIFY_SYSTEM");
    assert_eq!(
        TimelineHistory::command(TimelineId(2)),
        "TIMELINE_HISTORY 2"
    );
}

fn identify(cols: &[&str], row: &[Option<&str>]) -> crate::Result<IdentifySystem> {
    IdentifySystem::parse(&[result_set(cols, &[row])])
}

#[test]
fn identify_system_results() {
    let four = ["systemid", "timeline", "xlogpos", "dbname"];
    let sys = identify(
        &four,
        &[
            Some("7310999954437154839"),
            Some("1"),
            Some("0/3000148"),
            None,
        ],
    )
    .unwrap();
    assert_eq!(
        sys,
        IdentifySystem {
            system_id: 7310999954437154839,
            timeline: TimelineId(1),
            xlogpos: Lsn(0x0300_0148),
            dbname: None,
        }
    );
    let five = ["systemid", "timeline", "xlogpos", "dbname", "extra"];
    let sys = identify(
        &five,
        &[
            Some("1"),
            Some("3"),
            Some("1/0"),
            Some("postgres"),
            Some("x"),
        ],
    )
    .unwrap();
    assert_eq!(sys.dbname.as_deref(), Some("postgres"));
    assert_eq!((sys.timeline, sys.xlogpos), (TimelineId(3), Lsn(1 << 32)));
    // Three columns (no dbname) is the minimum.
    let three = identify(&four[..3], &[Some("1"), Some("1"), Some("0/0")]).unwrap();
    assert_eq!(three.dbname, None);
}

#[test]
fn identify_system_bad_results() {
    let four = ["systemid", "timeline", "xlogpos", "dbname"];
    for row in [
        [None, Some("1"), Some("0/0"), None],
        [Some("x"), Some("1"), Some("0/0"), None],
        [Some("1"), Some("0"), Some("0/0"), None],
        [Some("1"), Some("-1"), Some("0/0"), None],
        [Some("1"), Some("1"), Some("0/100000000"), None],
        [Some("1"), Some("1"), None, None],
    ] {
        assert_protocol_err(identify(&four, &row));
    }
    assert_protocol_err(identify(&four[..2], &[Some("1"), Some("1")]));
    assert_protocol_err(IdentifySystem::parse(&[]));
    let two = result_set(&four[..3], &[&[Some("1"), Some("1"), Some("0/0")]]);
    assert_protocol_err(IdentifySystem::parse(&[two.clone(), two]));
    assert_protocol_err(IdentifySystem::parse(&[result_set(&four, &[])]));
    let mut not_utf8 = result_set(&four[..3], &[&[Some("1"), Some("1"), Some("0/0")]]);
    not_utf8.rows[0][0] = Some(Bytes::from_static(b"\xff"));
    assert_protocol_err(IdentifySystem::parse(&[not_utf8]));
}

#[test]
fn show_results() {
    let res = result_set(&["wal_segment_size"], &[&[Some("16MB")]]);
    assert_eq!(parse_show(&[res]).unwrap(), "16MB");
    assert_protocol_err(parse_show(&[result_set(&["x"], &[&[None]])]));
    assert_protocol_err(parse_show(&[QueryResult::default()]));
}

#[test]
fn timeline_history_result() {
    let content = "1\t0/3000000\tno recovery target specified\n";
    let res = result_set(
        &["filename", "content"],
        &[&[Some("00000002.history"), Some(content)]],
    );
    let h = TimelineHistory::parse(&[res]).unwrap();
    assert_eq!(h.file_name, "00000002.history");
    assert_eq!(&h.content[..], content.as_bytes());
    assert_eq!(
        h.entries().unwrap(),
        vec![HistoryEntry {
            timeline: TimelineId(1),
            switchpoint: Lsn(0x0300_0000),
            reason: "no recovery target specified".into(),
        }]
    );
    let null = result_set(&["filename", "content"], &[&[Some("x"), None]]);
    assert_protocol_err(TimelineHistory::parse(&[null]));
}

#[test]
fn history_files() {
    let file = b"1\t0/3000000\tno recovery target specified\n\n\
                 2\t0/5000000\tbefore 2024-01-01 00:00:00+00\n";
    let entries = parse_history(file).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(
        entries[1],
        HistoryEntry {
            timeline: TimelineId(2),
            switchpoint: Lsn(0x0500_0000),
            reason: "before 2024-01-01 00:00:00+00".into(),
        }
    );
    // Comments, blank and indented lines, CRLF, a missing reason, gaps between timelines.
    let file = b"# comment\r\n   \n  3\tA/0\r\n\t# indented comment\n7\t1F/FF000000\n";
    let entries = parse_history(file).unwrap();
    assert_eq!(
        entries
            .iter()
            .map(|e| (e.timeline.0, e.switchpoint, e.reason.as_str()))
            .collect::<Vec<_>>(),
        vec![(3, Lsn(0xA_0000_0000), ""), (7, Lsn(0x1F_FF00_0000), "")]
    );
    assert_eq!(parse_history(b"").unwrap(), vec![]);
}

#[test]
fn bad_history_files() {
    for bad in [
        &b"x\t0/1\treason\n"[..],
        b"1\n",
        b"1\tzz\n",
        b"1\t0/100000000\n",
        b"-1\t0/1\n",
        b"2\t0/5\n1\t0/6\n",
        b"2\t0/5\n2\t0/6\n",
        b"\xff\n",
    ] {
        assert_protocol_err(parse_history(bad));
    }
    // The line number is reported.
    let m = assert_protocol_err(parse_history(b"1\t0/1\n\n# c\n1\t0/2\n"));
    assert!(m.contains("line 4"), "{m}");
}

#[test]
fn create_slot_result() {
    let cols = [
        "slot_name",
        "consistent_point",
        "snapshot_name",
        "output_plugin",
    ];
    let res = result_set(&cols, &[&[Some("s1"), Some("0/0"), None, None]]);
    assert_eq!(
        CreatedSlot::parse(&[res]).unwrap(),
        CreatedSlot {
            slot_name: "s1".into(),
            consistent_point: Some(Lsn(0)),
        }
    );
    let res = result_set(&cols, &[&[Some("s1"), None, None, None]]);
    assert_eq!(CreatedSlot::parse(&[res]).unwrap().consistent_point, None);
    let res = result_set(&cols, &[&[None, Some("0/0"), None, None]]);
    assert_protocol_err(CreatedSlot::parse(&[res]));
}

#[test]
fn read_slot_results() {
    let cols = ["slot_type", "restart_lsn", "restart_tli"];
    let none = result_set(&cols, &[&[None, None, None]]);
    assert_eq!(
        ReadSlot::parse(&[none]).unwrap(),
        ReadSlot {
            slot_type: None,
            restart_lsn: None,
            restart_tli: None,
        }
    );
    let filled = result_set(&cols, &[&[Some("physical"), Some("0/3000000"), Some("1")]]);
    assert_eq!(
        ReadSlot::parse(&[filled]).unwrap(),
        ReadSlot {
            slot_type: Some("physical".into()),
            restart_lsn: Some(Lsn(0x0300_0000)),
            restart_tli: Some(TimelineId(1)),
        }
    );
    // A slot that never reserved WAL has a type but no position.
    let unreserved = result_set(&cols, &[&[Some("physical"), None, None]]);
    assert_eq!(ReadSlot::parse(&[unreserved]).unwrap().restart_lsn, None);
    let bad = result_set(&cols, &[&[Some("physical"), Some("x"), Some("1")]]);
    assert_protocol_err(ReadSlot::parse(&[bad]));
}

#[test]
fn timeline_switch_result() {
    let cols = ["next_tli", "next_tli_startpos"];
    let res = result_set(&cols, &[&[Some("2"), Some("0/5000000")]]);
    assert_eq!(
        TimelineSwitch::parse(&res).unwrap(),
        TimelineSwitch {
            next_timeline: TimelineId(2),
            next_start: Lsn(0x0500_0000),
        }
    );
    for row in [
        [None, Some("0/5000000")],
        [Some("0"), Some("0/5000000")],
        [Some("2"), None],
        [Some("4294967296"), Some("0/0")],
    ] {
        assert_protocol_err(TimelineSwitch::parse(&result_set(&cols, &[&row])));
    }
}

/// `readTimeLineHistory` reads each line with `sscanf(fline, "%u\t%X/%X", …)`: the `\t` in
/// the format matches any run of white space, and the rest of the line is ignored.
#[test]
fn history_fields_separated_by_several_blanks() {
    let entries =
        parse_history(b"1\t\t0/3000000\tno recovery target specified\n2  0/5000000\n").unwrap();
    assert_eq!(
        entries.iter().map(|e| e.switchpoint).collect::<Vec<_>>(),
        [Lsn(0x0300_0000), Lsn(0x0500_0000)]
    );
}
