//! Every replication command against a real server.

use pgwire_repl::{CreateSlotOptions, Lsn, TimelineId};

use crate::common::{cluster, connect, lsn_of};

#[tokio::test]
async fn identify_system_and_show() {
    let pg = cluster(&[]);
    let mut c = connect(&pg).await;
    let sys = c.identify_system().await.unwrap();
    let sysid: u64 = pg
        .sql("SELECT system_identifier FROM pg_control_system()")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(sys.system_id, sysid);
    assert_eq!(sys.timeline, TimelineId(1));
    assert!(sys.xlogpos <= lsn_of(&pg, "SELECT pg_current_wal_flush_lsn()"));
    assert!(sys.xlogpos > Lsn(0));
    assert_eq!(sys.dbname, None);

    assert_eq!(c.wal_segment_size().await.unwrap().bytes(), 1 << 20);
    assert_eq!(c.show("wal_segment_size").await.unwrap(), "1MB");
    assert_eq!(c.show("wal_level").await.unwrap(), "replica");
    assert_eq!(c.server_version().map(|v| v.major()), Some(pg.version()));
    assert!(c
        .show("no_such_setting")
        .await
        .unwrap_err()
        .code()
        .is_some());
    // The connection survives an error and takes the next command.
    assert_eq!(c.identify_system().await.unwrap().system_id, sysid);
    c.close().await.unwrap();
}

#[tokio::test]
async fn create_read_and_drop_slots() {
    let pg = cluster(&[]);
    let mut c = connect(&pg).await;

    let created = c
        .create_replication_slot(
            "it_slot",
            CreateSlotOptions {
                temporary: false,
                reserve_wal: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(created.slot_name, "it_slot");
    // A physical slot's consistent point is always reported as 0/0.
    assert_eq!(created.consistent_point, Some(Lsn(0)));
    let cp = lsn_of(
        &pg,
        "SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = 'it_slot' AND slot_type = 'physical'",
    );
    assert!(cp > Lsn(0));

    // Without RESERVE_WAL the slot has no restart_lsn yet.
    c.create_replication_slot("lazy", CreateSlotOptions::default())
        .await
        .unwrap();
    // A second slot of the same name: duplicate_object.
    let dup = c
        .create_replication_slot("it_slot", CreateSlotOptions::default())
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Some("42710"), "{dup}");

    if pg.version() >= 15 {
        let read = c.read_replication_slot("it_slot").await.unwrap();
        assert_eq!(read.slot_type.as_deref(), Some("physical"));
        assert_eq!(read.restart_lsn, Some(cp));
        assert_eq!(read.restart_tli, Some(TimelineId(1)));
        let lazy = c.read_replication_slot("lazy").await.unwrap();
        assert_eq!(lazy.slot_type.as_deref(), Some("physical"));
        assert_eq!(lazy.restart_lsn, None);
        let missing = c.read_replication_slot("nope").await.unwrap();
        assert_eq!(missing.slot_type, None);
        assert_eq!(missing.restart_lsn, None);
    } else {
        assert!(c.read_replication_slot("it_slot").await.is_err());
    }

    c.drop_replication_slot("it_slot", false).await.unwrap();
    c.drop_replication_slot("lazy", true).await.unwrap();
    assert_eq!(
        pg.sql("SELECT count(*) FROM pg_replication_slots").unwrap(),
        "0"
    );
    let gone = c.drop_replication_slot("it_slot", false).await.unwrap_err();
    assert_eq!(gone.code(), Some("42704"), "{gone}");

    // A temporary slot lives as long as the connection.
    c.create_replication_slot(
        "temp_slot",
        CreateSlotOptions {
            temporary: true,
            reserve_wal: true,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        pg.sql("SELECT temporary FROM pg_replication_slots WHERE slot_name = 'temp_slot'")
            .unwrap(),
        "t"
    );
    c.close().await.unwrap();
    testenv::wait_for(
        "the temporary slot to go",
        std::time::Duration::from_secs(10),
        || pg.sql("SELECT count(*) FROM pg_replication_slots").unwrap() == "0",
    )
    .unwrap();
}
