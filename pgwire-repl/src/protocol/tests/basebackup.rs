//! BASE_BACKUP: the command text for each version, and the answer in both forms (one COPY
//! OUT per archive before 15, one tagged COPY OUT from 15), as the servers' own code sends
//! it (`basebackup.c`, `basebackup_copy.c`).

use bytes::Bytes;

use super::{complete, error_response, row, row_desc};
use crate::error::Error;
use crate::lsn::{Lsn, TimelineId};
use crate::protocol::backend::BackendMessage;
use crate::protocol::basebackup::{
    base_backup_command, upload_manifest_command, BackupEvent, BackupStep, BaseBackupDecoder,
    BaseBackupOptions, CheckpointMode, ManifestOption, Tablespace,
};
use crate::server_version::ServerVersion;

fn v(major: u32) -> Option<ServerVersion> {
    Some(ServerVersion::from_num(major * 10000))
}

#[test]
fn command_text_by_version() {
    let d = BaseBackupOptions::default();
    assert_eq!(
        base_backup_command(&d, v(14)).unwrap(),
        "BASE_BACKUP LABEL 'pg_basebackup base backup' MANIFEST 'yes'"
    );
    assert_eq!(
        base_backup_command(&d, v(15)).unwrap(),
        "BASE_BACKUP ( LABEL 'pg_basebackup base backup', MANIFEST 'yes' )"
    );
    // An unknown version gets the older form.
    assert_eq!(
        base_backup_command(&d, None).unwrap(),
        base_backup_command(&d, v(13)).unwrap()
    );
    let all = BaseBackupOptions {
        label: "it's".into(),
        progress: true,
        checkpoint: CheckpointMode::Fast,
        wal: true,
        wait: false,
        max_rate: Some(1024),
        tablespace_map: true,
        verify_checksums: false,
        manifest: ManifestOption::ForceEncode,
        manifest_checksums: Some("SHA256".into()),
        ..BaseBackupOptions::default()
    };
    assert_eq!(
        base_backup_command(&all, v(13)).unwrap(),
        "BASE_BACKUP LABEL 'it''s' PROGRESS FAST WAL NOWAIT MAX_RATE 1024 TABLESPACE_MAP \
         NOVERIFY_CHECKSUMS MANIFEST 'force-encode' MANIFEST_CHECKSUMS 'SHA256'"
    );
    assert_eq!(
        base_backup_command(&all, v(16)).unwrap(),
        "BASE_BACKUP ( LABEL 'it''s', PROGRESS, CHECKPOINT 'fast', WAL, WAIT 0, MAX_RATE 1024, \
         TABLESPACE_MAP, VERIFY_CHECKSUMS 0, MANIFEST 'force-encode', MANIFEST_CHECKSUMS 'SHA256' )"
    );
    let server = BaseBackupOptions {
        manifest: ManifestOption::No,
        target: Some("client".into()),
        compression: Some("zstd".into()),
        compression_detail: Some("level=3".into()),
        incremental: true,
        ..BaseBackupOptions::default()
    };
    assert_eq!(
        base_backup_command(&server, v(17)).unwrap(),
        "BASE_BACKUP ( LABEL 'pg_basebackup base backup', TARGET 'client', COMPRESSION 'zstd', \
         COMPRESSION_DETAIL 'level=3', INCREMENTAL )"
    );
    // What an older server cannot do is refused before anything is sent.
    let err = base_backup_command(&server, v(16)).unwrap_err();
    assert!(err.to_string().contains("INCREMENTAL requires"), "{err}");
    let compress = BaseBackupOptions {
        compression: Some("gzip".into()),
        ..BaseBackupOptions::default()
    };
    let err = base_backup_command(&compress, v(14)).unwrap_err();
    assert!(err.to_string().contains("COMPRESSION requires"), "{err}");
    assert!(base_backup_command(&compress, None).is_err());
    let bad_rate = BaseBackupOptions {
        max_rate: Some(31),
        ..BaseBackupOptions::default()
    };
    assert!(base_backup_command(&bad_rate, v(15)).is_err());
    let nul = BaseBackupOptions {
        label: "a\0b".into(),
        ..BaseBackupOptions::default()
    };
    assert!(matches!(
        base_backup_command(&nul, v(15)),
        Err(Error::Config(_))
    ));
    assert_eq!(upload_manifest_command(v(17)).unwrap(), "UPLOAD_MANIFEST");
    assert!(upload_manifest_command(v(16)).is_err());
}

fn start_sets(tablespaces: &[(Option<&str>, Option<&str>, Option<&str>)]) -> Vec<BackendMessage> {
    let mut msgs = vec![
        row_desc(&["recptr", "tli"]),
        row(&[Some("0/2000028"), Some("1")]),
        complete("SELECT"),
        row_desc(&["spcoid", "spclocation", "size"]),
    ];
    for (oid, loc, size) in tablespaces {
        msgs.push(row(&[*oid, *loc, *size]));
    }
    msgs.push(complete("SELECT"));
    msgs
}

fn end_sets() -> Vec<BackendMessage> {
    vec![
        row_desc(&["recptr", "tli"]),
        row(&[Some("0/2000100"), Some("1")]),
        complete("SELECT"),
        complete("BASE_BACKUP"),
        BackendMessage::ReadyForQuery(b'I'),
    ]
}

fn tagged(tag: u8, body: &[u8]) -> BackendMessage {
    let mut v = vec![tag];
    v.extend_from_slice(body);
    BackendMessage::CopyData(Bytes::from(v))
}

/// Feeds every message; returns the events and whether the last step was Done.
fn run(version: u32, msgs: Vec<BackendMessage>) -> crate::error::Result<Vec<BackupEvent>> {
    let mut d = BaseBackupDecoder::new(v(version));
    let mut events = Vec::new();
    let n = msgs.len();
    for (i, m) in msgs.into_iter().enumerate() {
        let step = d.handle(m)?;
        while let Some(e) = d.next_event() {
            events.push(e);
        }
        assert_eq!(step == BackupStep::Done, i + 1 == n, "Done only at the end");
    }
    Ok(events)
}

fn expected_common() -> (BackupEvent, BackupEvent, BackupEvent) {
    (
        BackupEvent::Started {
            start: Lsn(0x200_0028),
            timeline: TimelineId(1),
        },
        BackupEvent::Tablespaces(vec![
            Tablespace {
                oid: Some(16384),
                location: Some("/ts1".into()),
                size_kb: Some(8),
            },
            Tablespace {
                oid: None,
                location: None,
                size_kb: Some(30000),
            },
        ]),
        BackupEvent::Ended {
            end: Lsn(0x200_0100),
            timeline: TimelineId(1),
        },
    )
}

#[test]
fn before_15_one_copy_per_archive_and_the_tar_end_added() {
    let mut msgs = start_sets(&[
        (Some("16384"), Some("/ts1"), Some("8")),
        (None, None, Some("30000")),
    ]);
    for part in [&b"ts-tar"[..], b"base-tar-1", b"base-tar-2"] {
        if part != b"base-tar-2" {
            msgs.push(BackendMessage::CopyOutResponse);
        }
        msgs.push(BackendMessage::CopyData(Bytes::copy_from_slice(part)));
        if part != b"base-tar-1" {
            msgs.push(BackendMessage::CopyDone);
        }
    }
    msgs.push(BackendMessage::CopyOutResponse);
    msgs.push(BackendMessage::CopyData(Bytes::from_static(b"{manifest}")));
    msgs.push(BackendMessage::CopyDone);
    msgs.extend(end_sets());
    let events = run(14, msgs).unwrap();
    let (started, list, ended) = expected_common();
    let end = BackupEvent::ArchiveData(Bytes::from_static(&[0; 1024]));
    assert_eq!(
        events,
        vec![
            started,
            list,
            BackupEvent::ArchiveStart {
                name: "16384.tar".into(),
                location: Some("/ts1".into())
            },
            BackupEvent::ArchiveData(Bytes::from_static(b"ts-tar")),
            end.clone(),
            BackupEvent::ArchiveStart {
                name: "base.tar".into(),
                location: None
            },
            BackupEvent::ArchiveData(Bytes::from_static(b"base-tar-1")),
            BackupEvent::ArchiveData(Bytes::from_static(b"base-tar-2")),
            end,
            BackupEvent::ManifestStart,
            BackupEvent::ManifestData(Bytes::from_static(b"{manifest}")),
            ended,
        ]
    );
}

#[test]
fn from_15_one_tagged_copy() {
    let mut msgs = start_sets(&[
        (Some("16384"), Some("/ts1"), Some("8")),
        (None, None, Some("30000")),
    ]);
    msgs.push(BackendMessage::CopyOutResponse);
    msgs.push(tagged(b'n', b"16384.tar\0/ts1\0"));
    msgs.push(tagged(b'd', b"ts-tar"));
    msgs.push(tagged(b'p', &6i64.to_be_bytes()));
    msgs.push(tagged(b'n', b"base.tar\0\0"));
    msgs.push(tagged(b'd', b"base-tar"));
    msgs.push(tagged(b'm', b""));
    msgs.push(tagged(b'd', b"{manifest}"));
    msgs.push(BackendMessage::CopyDone);
    msgs.extend(end_sets());
    let events = run(15, msgs).unwrap();
    let (started, list, ended) = expected_common();
    let expected = vec![
        started,
        list,
        BackupEvent::ArchiveStart {
            name: "16384.tar".into(),
            location: Some("/ts1".into()),
        },
        BackupEvent::ArchiveData(Bytes::from_static(b"ts-tar")),
        BackupEvent::Progress(6),
        BackupEvent::ArchiveStart {
            name: "base.tar".into(),
            location: None,
        },
        BackupEvent::ArchiveData(Bytes::from_static(b"base-tar")),
        BackupEvent::ManifestStart,
        BackupEvent::ManifestData(Bytes::from_static(b"{manifest}")),
        ended,
    ];
    assert_eq!(events, expected);
}

#[test]
fn an_error_response_ends_the_backup_with_the_servers_error() {
    for version in [14, 15] {
        let mut msgs = start_sets(&[(None, None, None)]);
        msgs.push(BackendMessage::CopyOutResponse);
        if version == 15 {
            msgs.push(tagged(b'n', b"base.tar\0\0"));
            msgs.push(tagged(b'd', b"x"));
        } else {
            msgs.push(BackendMessage::CopyData(Bytes::from_static(b"x")));
        }
        msgs.push(error_response("ERROR", "58P01", "could not stat file"));
        msgs.push(BackendMessage::ReadyForQuery(b'I'));
        let mut d = BaseBackupDecoder::new(v(version));
        let mut got = None;
        for m in msgs {
            match d.handle(m) {
                Ok(_) => while d.next_event().is_some() {},
                Err(e) => {
                    got = Some(e);
                    break;
                }
            }
        }
        let e = got.expect("the backup fails");
        assert_eq!(e.as_db().map(|d| d.code.as_str()), Some("58P01"), "{e}");
    }
}

#[test]
fn hostile_answers_are_protocol_errors() {
    let header15 = || {
        let mut m = start_sets(&[(None, None, None)]);
        m.push(BackendMessage::CopyOutResponse);
        m
    };
    let cases: Vec<(u32, Vec<BackendMessage>, &str)> = vec![
        (
            15,
            [header15(), vec![tagged(b'd', b"x")]].concat(),
            "before any archive",
        ),
        (
            15,
            [header15(), vec![tagged(b'x', b"")]].concat(),
            "unrecognized",
        ),
        (
            15,
            [header15(), vec![BackendMessage::CopyData(Bytes::new())]].concat(),
            "empty",
        ),
        (
            15,
            [header15(), vec![tagged(b'p', b"1234")]].concat(),
            "progress",
        ),
        (
            15,
            [header15(), vec![tagged(b'p', &(-1i64).to_be_bytes())]].concat(),
            "negative",
        ),
        (
            15,
            [header15(), vec![tagged(b'n', b"base.tar\0")]].concat(),
            "new archive",
        ),
        (
            15,
            [header15(), vec![tagged(b'n', b"a\0b\0c")]].concat(),
            "new archive",
        ),
        (
            15,
            [header15(), vec![tagged(b'm', b"x")]].concat(),
            "trailing",
        ),
        (
            15,
            [header15(), vec![tagged(b'm', b""), tagged(b'n', b"a\0\0")]].concat(),
            "after the backup manifest",
        ),
        (
            15,
            [
                header15(),
                vec![
                    BackendMessage::CopyDone,
                    BackendMessage::ReadyForQuery(b'I'),
                ],
            ]
            .concat(),
            "without sending its end position",
        ),
        (
            14,
            vec![BackendMessage::CopyOutResponse],
            "before sending its start",
        ),
        (
            14,
            vec![
                row_desc(&["recptr", "tli"]),
                row(&[Some("nope"), Some("1")]),
                complete("SELECT"),
            ],
            "not a WAL location",
        ),
        (
            14,
            vec![
                row_desc(&["recptr", "tli"]),
                row(&[Some("0/1"), Some("0")]),
                complete("SELECT"),
            ],
            "timeline",
        ),
        (
            14,
            [start_sets(&[(Some("1"), None, None)])].concat(),
            "oid without a location",
        ),
        (
            14,
            [
                start_sets(&[(None, None, None)]),
                vec![
                    BackendMessage::CopyOutResponse,
                    BackendMessage::CopyDone,
                    BackendMessage::CopyOutResponse,
                    BackendMessage::CopyDone,
                    BackendMessage::CopyOutResponse,
                ],
            ]
            .concat(),
            "more COPY streams",
        ),
        (14, vec![BackendMessage::CopyBothResponse], "unexpected"),
    ];
    for (version, msgs, want) in cases {
        let err = run(version, msgs).expect_err(want);
        assert!(
            matches!(err, Error::Protocol(_)) && err.to_string().contains(want),
            "{want}: {err}"
        );
    }
}
