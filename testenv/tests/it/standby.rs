use std::time::Duration;

use testenv::{wait_for, Cluster, Options};

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
