use std::time::Duration;

use testenv::{Cluster, Options};

#[test]
fn start_sql_restart_kill_and_drop() {
    let opts = Options::default().conf("wal_sender_timeout = '2s'");
    let c = Cluster::start(opts).unwrap();
    eprintln!(
        "PostgreSQL {} from {} as {} (switched: {})",
        c.version(),
        c.bin().bindir().display(),
        c.os_user().name(),
        c.os_user().is_switched()
    );
    assert!(c.version() >= 10);
    assert_eq!(c.host(), "127.0.0.1");
    assert!(c
        .socket_dir()
        .join(format!(".s.PGSQL.{}", c.port()))
        .exists());

    // Settings from the options and the defaults.
    assert_eq!(c.sql("SHOW wal_segment_size").unwrap(), "1MB");
    assert_eq!(c.sql("SHOW wal_level").unwrap(), "replica");
    assert_eq!(c.sql("SHOW fsync").unwrap(), "off");
    assert_eq!(c.sql("SHOW wal_sender_timeout").unwrap(), "2s");
    assert_eq!(c.sql("SHOW listen_addresses").unwrap(), "127.0.0.1");
    assert_eq!(c.sql("SELECT current_user").unwrap(), c.superuser());

    // Unaligned tuples-only output; several statements; errors carry psql's stderr.
    c.sql("CREATE TABLE t (a int, b text); INSERT INTO t VALUES (1, 'x'), (2, 'y')")
        .unwrap();
    assert_eq!(c.sql("SELECT a, b FROM t ORDER BY a").unwrap(), "1|x\n2|y");
    let err = c.sql("SELECT * FROM no_such_table").unwrap_err();
    assert!(err.to_string().contains("no_such_table"), "{err}");

    // WAL helpers.
    let slot_lsn = c.create_physical_slot("s1").unwrap();
    assert!(slot_lsn.contains('/'), "{slot_lsn}");
    assert!(c.slot_exists("s1").unwrap());
    let before = c.current_wal_file().unwrap();
    c.generate_wal(300_000).unwrap();
    c.switch_wal().unwrap();
    let segment = c.wal_file(&before).unwrap();
    assert_eq!(segment.len(), 1024 * 1024);
    // Right after a switch the insert position sits on the boundary, which
    // pg_walfile_name() attributes to the old segment: write a little first.
    c.generate_wal(100).unwrap();
    assert_ne!(c.current_wal_file().unwrap(), before);
    assert!(c
        .log()
        .contains("database system is ready to accept connections"));

    // Stop, start again on the same port; then crash and recover.
    let port = c.port();
    c.restart().unwrap();
    assert_eq!(c.sql("SELECT count(*) FROM t").unwrap(), "2");
    let pid = c.postmaster_pid().unwrap();
    c.kill().unwrap();
    assert!(c.sql("SELECT 1").is_err());
    c.start_again().unwrap();
    assert_ne!(c.postmaster_pid().unwrap(), pid);
    assert_eq!(c.port(), port);
    assert_eq!(c.sql("SELECT count(*) FROM t").unwrap(), "2");

    // Drop stops the server and removes everything.
    let dir = c.temp_dir().to_path_buf();
    let pid = c.postmaster_pid().unwrap();
    drop(c);
    assert!(!dir.exists());
    testenv::wait_for("the postmaster to exit", Duration::from_secs(5), || {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z"))
    })
    .unwrap();
}

#[test]
fn fsync_and_group_access_options() {
    let c = Cluster::start(Options {
        fsync: true,
        group_access: true,
        wal_segsize_mb: 2,
        ..Default::default()
    })
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(c.data_dir())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o750);
    assert_eq!(c.sql("SHOW fsync").unwrap(), "on");
    assert_eq!(c.sql("SHOW wal_segment_size").unwrap(), "2MB");
    assert_eq!(c.sql("SHOW data_directory_mode").unwrap(), "0750");
}
