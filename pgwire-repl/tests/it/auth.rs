//! Each authentication method over TCP and the Unix socket, and the errors users see.

use std::os::unix::fs::PermissionsExt;

use pgwire_repl::auth::AuthMethod;
use pgwire_repl::{Client, Config};
use testenv::roles::{NOHBA, NOREPL, REPL_MD5, REPL_PASSWORD, REPL_SCRAM, REPL_TRUST};

use crate::common::{cluster, config};

#[tokio::test]
async fn every_method_over_tcp() {
    let pg = cluster(&[]);
    for (role, method) in [
        (REPL_TRUST, AuthMethod::Trust),
        (REPL_PASSWORD, AuthMethod::Cleartext),
        (REPL_MD5, AuthMethod::Md5),
        (REPL_SCRAM, AuthMethod::ScramSha256),
    ] {
        let c = Client::connect(&config(&pg, role.name, role.password))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", role.name));
        assert_eq!(c.server_info().auth_method, Some(method), "{}", role.name);
        assert!(c.server_info().process_id > 0);
        c.close().await.unwrap();
    }
}

#[tokio::test]
async fn wrong_password_is_28p01_with_the_servers_message() {
    let pg = cluster(&[]);
    for role in [REPL_PASSWORD, REPL_MD5, REPL_SCRAM] {
        let err = Client::connect(&config(&pg, role.name, Some("wrong")))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("28P01"), "{}: {err}", role.name);
        let want = format!("password authentication failed for user \"{}\"", role.name);
        assert_eq!(err.as_db().unwrap().message, want);
        assert!(!err.to_string().contains("wrong"), "password leaked: {err}");
    }
}

#[tokio::test]
async fn refusals_and_missing_passwords() {
    let pg = cluster(&[]);
    let err = Client::connect(&config(&pg, NOHBA.name, None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("28000"), "{err}");
    assert!(err.to_string().contains("no pg_hba.conf entry"), "{err}");

    // A role without REPLICATION may log in, but not start a walsender.
    let err = Client::connect(&config(&pg, NOREPL.name, None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("42501"), "{err}");
    Client::connect_sql(&config(&pg, NOREPL.name, None))
        .await
        .unwrap()
        .close()
        .await
        .unwrap();

    // The server asks for a password we do not have.
    let mut cfg = config(&pg, REPL_SCRAM.name, None);
    cfg.passfile = Some("/nonexistent/pgpass".into());
    let err = Client::connect(&cfg).await.unwrap_err();
    assert!(err.needs_password(), "{err:?}");
    assert_eq!(
        err.to_string(),
        "authentication failed: the server requested SCRAM-SHA-256 authentication but no password was supplied"
    );
}

#[tokio::test]
async fn unix_socket_and_uri() {
    let pg = cluster(&[]);
    let c = Client::connect(&Config::parse(&pg.socket_conninfo(REPL_TRUST.name)).unwrap())
        .await
        .unwrap();
    c.close().await.unwrap();
    let dir = pg.socket_dir().display().to_string().replace('/', "%2F");
    let uri = format!(
        "postgresql://{}:{}@{dir}:{}/postgres?application_name=it",
        REPL_SCRAM.name,
        REPL_SCRAM.password.unwrap(),
        pg.port()
    );
    let c = Client::connect(&Config::parse(&uri).unwrap())
        .await
        .unwrap();
    c.close().await.unwrap();
    // Over a socket that does not exist: the error names it, as libpq's does.
    let cfg = Config::parse(&format!("host=/nonexistent port={} user=x", pg.port())).unwrap();
    let err = Client::connect(&cfg).await.unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("\"/nonexistent/.s.PGSQL.{}\"", pg.port())),
        "{err}"
    );
}

#[tokio::test]
async fn password_file_is_used_only_when_private() {
    let pg = cluster(&[]);
    let file = pg.temp_dir().join("it.pgpass");
    std::fs::write(
        &file,
        format!(
            "# comment\n127.0.0.1:{}:replication:{}:{}\n",
            pg.port(),
            REPL_SCRAM.name,
            REPL_SCRAM.password.unwrap()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut cfg = config(&pg, REPL_SCRAM.name, None);
    cfg.passfile = Some(file.clone());
    let c = Client::connect(&cfg).await.unwrap();
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    c.close().await.unwrap();

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let params = cfg.resolve(true).unwrap();
    assert_eq!(params.hosts[0].password, None);
    let warning = format!(
        "password file \"{}\" has group or world access; permissions should be u=rw (0600) or less",
        file.display()
    );
    assert_eq!(params.warnings, std::slice::from_ref(&warning));
    assert!(Client::connect(&cfg).await.is_err());

    // A connection that needs no password still succeeds, and the client hands the warning
    // to the application (the library prints nothing).
    let mut trust = config(&pg, REPL_TRUST.name, None);
    trust.passfile = Some(file.clone());
    let c = Client::connect(&trust).await.unwrap();
    assert_eq!(c.warnings(), [warning]);
    c.close().await.unwrap();
}
