//! The archiver over TLS (verify-full, a client certificate, channel binding), following the
//! primary across a failover through a host list, and never showing a secret.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use testenv::pki::{enable_test_pki, Pki, CERT_USER};
use testenv::roles::REPL_SCRAM;
use testenv::Cluster;

use crate::common::*;

/// A server with TLS on (testenv's throwaway CA) and a role that logs in with a client
/// certificate.
fn tls_cluster() -> (Cluster, Pki) {
    let pg = cluster(&[]);
    let pki = enable_test_pki(&pg).unwrap();
    (pg, pki)
}

/// Fails the test if `text` shows the SCRAM role's password or a line of a private key.
fn assert_no_secrets(text: &str, pki: Option<&Pki>) {
    assert!(
        !text.contains(REPL_SCRAM.password.unwrap()),
        "password in:\n{text}"
    );
    for pem in pki.iter().flat_map(|p| &p.key_pems) {
        for line in pem
            .lines()
            .filter(|l| !l.starts_with("-----") && l.len() > 20)
        {
            assert!(!text.contains(line), "key material in:\n{text}");
        }
    }
}

fn scram_conninfo(host: &str, port: &str, extra: &str) -> String {
    format!(
        "host={host} port={port} user={} password={} dbname=postgres {extra}",
        REPL_SCRAM.name,
        REPL_SCRAM.password.unwrap()
    )
}

/// Waits for the archive to hold a complete segment after WAL is written and switched.
fn archive_a_segment(pg: &Cluster, ar: &mut Background, dir: &TempDir) {
    ar.wait_until("streaming to start", Duration::from_secs(20), |e| {
        streaming_start(e).is_some()
    });
    pg.generate_wal(2 << 20).unwrap();
    pg.switch_wal().unwrap();
    ar.wait_until("a complete segment", Duration::from_secs(30), |_| {
        !complete_segments(dir.path()).is_empty()
    });
}

#[test]
fn archives_over_verify_full_with_a_client_certificate() {
    let (pg, pki) = tls_cluster();
    let dir = TempDir::new("tls");
    let conninfo = format!(
        "host=127.0.0.1 port={} user={CERT_USER} dbname=postgres sslmode=verify-full \
         sslrootcert={} sslcert={} sslkey={}",
        pg.port(),
        pki.ca.display(),
        pki.client_cert.display(),
        pki.client_key.display()
    );
    let mut ar = Background::spawn(bin().args(["-D", &dir.arg(), "-v", "-w", "-d", &conninfo]));
    archive_a_segment(&pg, &mut ar, &dir);
    // The walsender's connection is TLS.
    let tls = pg
        .sql(
            "SELECT count(*) FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid) WHERE s.ssl",
        )
        .unwrap();
    assert_eq!(tls, "1");
    ar.signal("INT");
    let (code, err) = ar.wait(Duration::from_secs(10));
    assert_eq!(code, Some(0), "stderr:\n{err}");
    assert_no_secrets(&err, Some(&pki));
}

#[test]
fn scram_with_channel_binding_and_errors_without_secrets() {
    let (pg, pki) = tls_cluster();
    let port = pg.port().to_string();
    let dir = TempDir::new("cb");
    let ok = scram_conninfo(
        "127.0.0.1",
        &port,
        &format!(
            "sslmode=verify-full sslrootcert={} channel_binding=require",
            pki.ca.display()
        ),
    );
    let mut ar = Background::spawn(bin().args(["-D", &dir.arg(), "-v", "-w", "-d", &ok]));
    archive_a_segment(&pg, &mut ar, &dir);
    ar.signal("INT");
    let (code, err) = ar.wait(Duration::from_secs(10));
    assert_eq!(code, Some(0), "stderr:\n{err}");
    assert_no_secrets(&err, Some(&pki));

    // Failures: one line each, exit 1, no secret.
    let key_readable = pki.client_key.with_file_name("readable.key");
    std::fs::copy(&pki.client_key, &key_readable).unwrap();
    std::fs::set_permissions(&key_readable, std::fs::Permissions::from_mode(0o644)).unwrap();
    for (conninfo, want) in [
        (
            scram_conninfo(
                "127.0.0.1",
                &port,
                &format!("sslmode=verify-ca sslrootcert={}", pki.other_ca.display()),
            ),
            "invalid peer certificate",
        ),
        (
            scram_conninfo(
                "db.wrong.example",
                &port,
                &format!(
                    "hostaddr=127.0.0.1 sslmode=verify-full sslrootcert={}",
                    pki.ca.display()
                ),
            ),
            "not valid for name",
        ),
        (
            scram_conninfo(
                "127.0.0.1",
                &port,
                "sslmode=disable channel_binding=require",
            ),
            "channel binding required, but SSL not in use",
        ),
        (
            format!(
                "host=127.0.0.1 port={port} user={CERT_USER} sslmode=require sslcert={} sslkey={}",
                pki.client_cert.display(),
                key_readable.display()
            ),
            "has group or world access",
        ),
        (
            format!(
                "host=127.0.0.1 port={port} user={} password=wrong-{} sslmode=require",
                REPL_SCRAM.name,
                REPL_SCRAM.password.unwrap()
            ),
            "password authentication failed",
        ),
    ] {
        let out = run(
            bin().args(["-D", &dir.arg(), "-v", "-n", "-w", "-d", &conninfo]),
            Duration::from_secs(30),
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{conninfo}: {err}");
        assert!(err.contains(want), "{conninfo}: {err}");
        assert_eq!(err.matches("error:").count(), 1, "{err}");
        assert_no_secrets(&err, Some(&pki));
    }
}

#[test]
fn follows_the_new_primary_after_a_failover() {
    let primary = cluster(&[]);
    let standby = primary.make_standby("sb").unwrap();
    let dir = TempDir::new("failover");
    // The standby first: target_session_attrs skips it while it is one.
    let conninfo = scram_conninfo(
        "127.0.0.1,127.0.0.1",
        &format!("{},{}", standby.port(), primary.port()),
        "target_session_attrs=read-write connect_timeout=5",
    );
    let mut ar = Background::spawn(bin().args(["-D", &dir.arg(), "-v", "-d", &conninfo]));
    archive_a_segment(&primary, &mut ar, &dir);
    let pid_on = |pg: &Cluster| {
        pg.sql("SELECT count(*) FROM pg_stat_replication WHERE application_name = 'pgwal-recv'")
            .unwrap()
    };
    assert_eq!(pid_on(&primary), "1");

    // The primary fails; the standby is promoted and takes writes on timeline 2.
    primary.stop().unwrap();
    // While the standby is still one, reconnecting fails on both hosts: one error line.
    ar.wait_until("a reconnection to fail", Duration::from_secs(30), |e| {
        e.contains("session is read-only")
    });
    let line = ar
        .stderr()
        .lines()
        .find(|l| l.contains("session is read-only"))
        .map(str::to_owned)
        .unwrap_or_default();
    assert!(
        line.starts_with("pgwal-recv: error: could not connect to any of 2 servers: "),
        "{line}"
    );
    assert!(
        line.contains(&format!(
            "port {} failed: Connection refused",
            primary.port()
        )),
        "{line}"
    );
    standby.promote().unwrap();
    standby.generate_wal(2 << 20).unwrap();
    standby.switch_wal().unwrap();
    let seg = seg1mb();
    let end = lsn(&standby, "SELECT pg_current_wal_lsn()");
    let name = seg.file_name(pgwire_repl::TimelineId(2), seg.segment_of(end) - 1);
    ar.wait_until(
        &format!("{name} from the new primary"),
        Duration::from_secs(90),
        |_| has_file(dir.path(), &name),
    );
    assert_eq!(pid_on(&standby), "1");
    ar.signal("INT");
    let (code, err) = ar.wait(Duration::from_secs(10));
    assert_eq!(code, Some(0), "stderr:\n{err}");
    assert_no_secrets(&err, None);
}
