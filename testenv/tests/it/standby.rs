use std::time::Duration;

use testenv::{wait_for, CloneMethod, Cluster, Options};

#[test]
fn standby_streams_then_is_promoted() {
    let primary = Cluster::start(Options::default()).unwrap();
    primary.sql("CREATE TABLE t (x text)").unwrap();
    let standby = primary.make_standby("standby1").unwrap();
    assert_ne!(standby.port(), primary.port());
    assert!(standby.is_in_recovery().unwrap());
    assert!(primary.slot_exists("standby1").unwrap());
    let active = primary
        .sql("SELECT active FROM pg_replication_slots WHERE slot_name = 'standby1'")
        .unwrap();
    assert_eq!(active, "t");

    primary
        .sql("INSERT INTO t VALUES ('from primary')")
        .unwrap();
    wait_for(
        "the row to reach the standby",
        Duration::from_secs(10),
        || {
            standby
                .sql("SELECT x FROM t")
                .is_ok_and(|s| s == "from primary")
        },
    )
    .unwrap();
    assert!(standby.sql("INSERT INTO t VALUES ('no')").is_err());

    standby.promote().unwrap();
    assert!(!standby.is_in_recovery().unwrap());
    standby
        .sql("INSERT INTO t VALUES ('from promoted')")
        .unwrap();
    assert_eq!(
        standby.sql("SELECT x FROM t ORDER BY x").unwrap(),
        "from primary\nfrom promoted"
    );
    // A promoted standby starts timeline 2 and writes its history file.
    standby.switch_wal().unwrap();
    let history = standby.wal_file("00000002.history").unwrap();
    assert!(!history.is_empty());
}

/// The clone by pgwal-recv basebackup, also of a promoted server on timeline 2, whose
/// standby needs the history file.
#[test]
fn pgwal_recv_standbys_stream_on_both_timelines() {
    let primary = Cluster::start(Options::default()).unwrap();
    primary
        .sql("CREATE TABLE t (x text); INSERT INTO t VALUES ('before')")
        .unwrap();
    let standby = primary
        .make_standby_with("copy1", CloneMethod::PgwalRecv)
        .unwrap();
    assert!(standby.is_in_recovery().unwrap());
    assert!(!standby.data_dir().join("backup_label").exists());
    primary.sql("INSERT INTO t VALUES ('after')").unwrap();
    let rows = || standby.sql("SELECT string_agg(x, ',' ORDER BY x) FROM t");
    wait_for("both rows on the standby", Duration::from_secs(10), || {
        rows().is_ok_and(|s| s == "after,before")
    })
    .unwrap();
    // The primary's slots are not copied.
    assert_eq!(
        standby
            .sql("SELECT count(*) FROM pg_replication_slots")
            .unwrap(),
        "0"
    );

    primary.stop().unwrap();
    standby.promote().unwrap();
    standby.sql("INSERT INTO t VALUES ('promoted')").unwrap();
    let second = standby
        .make_standby_with("copy2", CloneMethod::PgwalRecv)
        .unwrap();
    assert!(second.wal_file("00000002.history").is_ok());
    standby.sql("INSERT INTO t VALUES ('timeline 2')").unwrap();
    wait_for("the rows of timeline 2", Duration::from_secs(10), || {
        second
            .sql("SELECT string_agg(x, ',' ORDER BY x) FROM t")
            .is_ok_and(|s| s == "after,before,promoted,timeline 2")
    })
    .unwrap();
    assert_eq!(
        second
            .sql("SELECT received_tli FROM pg_stat_wal_receiver")
            .unwrap(),
        "2"
    );
}
