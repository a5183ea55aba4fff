use testenv::roles::{self, NOHBA, NOREPL, REPL_MD5, REPL_PASSWORD, REPL_SCRAM, REPL_TRUST};
use testenv::{Cluster, Options};

#[test]
fn every_role_gets_in_through_its_hba_line() {
    let c = Cluster::start(Options::default()).unwrap();

    // The MD5 password must be stored as MD5, the others as SCRAM.
    let stored = c
        .sql(
            "SELECT rolname, split_part(rolpassword, '$', 1) FROM pg_authid \
             WHERE rolpassword IS NOT NULL ORDER BY 1",
        )
        .unwrap();
    let md5 = c
        .sql("SELECT 'md5' || md5('md5-secret' || 'repl_md5')")
        .unwrap();
    assert_eq!(
        stored,
        format!("repl_md5|{md5}\nrepl_password|SCRAM-SHA-256\nrepl_scram|SCRAM-SHA-256")
    );

    for role in [REPL_TRUST, REPL_PASSWORD, REPL_MD5, REPL_SCRAM, NOREPL] {
        // Normal connection over TCP, password in PGPASSWORD.
        let who = c
            .sql_as(role.name, role.password, "SELECT current_user")
            .unwrap();
        assert_eq!(who, role.name);
        // Replication connection over TCP.
        let conninfo = format!("{} replication=true", c.conninfo(role.name, None));
        let res = c.psql(&conninfo, role.password, "IDENTIFY_SYSTEM");
        if role.replication {
            let row = res.unwrap();
            assert_eq!(row.split('|').count(), 4, "{row}");
        } else {
            let err = res.unwrap_err().to_string();
            assert!(err.contains("replication"), "{err}");
        }
    }

    // Wrong and missing passwords fail.
    for role in [REPL_PASSWORD, REPL_MD5, REPL_SCRAM] {
        let err = c.sql_as(role.name, Some("wrong"), "SELECT 1").unwrap_err();
        assert!(
            err.to_string().contains("password authentication failed"),
            "{err}"
        );
        assert!(c.sql_as(role.name, None, "SELECT 1").is_err());
    }
    // The server says which line (so which method) it used: "Connection matched
    // pg_hba.conf line N: ...", from 16 on "Connection matched file \"…/pg_hba.conf\" line N".
    let log = c.log();
    for (role, method) in [
        (REPL_PASSWORD, "password"),
        (REPL_MD5, "md5"),
        (REPL_SCRAM, "scram-sha-256"),
    ] {
        let matched = log.lines().any(|l| {
            l.contains("Connection matched")
                && l.contains("pg_hba.conf")
                && l.contains(role.name)
                && l.trim_end().trim_end_matches('"').ends_with(method)
        });
        assert!(
            matched,
            "no {method} line for {} in the log:\n{log}",
            role.name
        );
    }

    // The conninfo with an embedded password works too.
    let ci = c.conninfo(REPL_SCRAM.name, REPL_SCRAM.password);
    assert_eq!(c.psql(&ci, None, "SELECT 1").unwrap(), "1");

    // No pg_hba.conf line: rejected, over TCP and over the socket.
    let err = c.sql_as(NOHBA.name, None, "SELECT 1").unwrap_err();
    assert!(err.to_string().contains("no pg_hba.conf entry"), "{err}");
    let err = c
        .psql(&c.socket_conninfo(NOHBA.name), None, "SELECT 1")
        .unwrap_err();
    assert!(err.to_string().contains("no pg_hba.conf entry"), "{err}");

    // Every role also has its socket lines.
    for role in [REPL_TRUST, NOREPL] {
        let who = c.psql(&c.socket_conninfo(role.name), None, "SELECT current_user");
        assert_eq!(who.unwrap(), role.name);
    }
    assert_eq!(roles::ROLES.len(), 6);
}
