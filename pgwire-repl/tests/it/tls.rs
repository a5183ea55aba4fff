//! TLS against a real server with `ssl = on` and a CA made by the test: every sslmode,
//! certificate checks, client certificates, channel binding, and what stays secret.

use pgwire_repl::auth::AuthMethod;
use pgwire_repl::error::Report;
use pgwire_repl::{Client, Config, Error};
use testenv::roles::{REPL_MD5, REPL_SCRAM};
use testenv::Cluster;

use crate::common::cluster;
use crate::pki::{pem_body_lines, tls_cluster, Pki, CERT_USER};

/// SCRAM role over TCP with extra keywords; the password file is ignored and the home
/// directory's `~/.postgresql` files too (a HOME of its own would be needed to be sure, so
/// the tests name every file).
fn scram(pg: &Cluster, extra: &str) -> Config {
    Config::parse(&format!(
        "host=127.0.0.1 port={} user={} password={} dbname=postgres passfile=/nonexistent {extra}",
        pg.port(),
        REPL_SCRAM.name,
        REPL_SCRAM.password.unwrap()
    ))
    .unwrap()
}

/// Whether the server sees the connection as TLS.
pub(crate) fn uses_tls(pg: &Cluster, c: &Client) -> bool {
    let pid = c.server_info().process_id;
    pg.sql(&format!("SELECT ssl FROM pg_stat_ssl WHERE pid = {pid}"))
        .unwrap()
        == "t"
}

/// Connects, or panics with the error.
async fn connect(cfg: &Config) -> Client {
    Client::connect(cfg)
        .await
        .unwrap_or_else(|e| panic!("{:?}: {}", cfg.sslmode, Report(&e)))
}

/// Fails to connect; returns the whole error text after checking that no secret is in it.
async fn fails(cfg: &Config, pki: Option<&Pki>) -> (Error, String) {
    fails_keeping_keys(cfg, pki.map_or(&[], |p| &p.key_pems)).await
}

/// Fails to connect; returns the whole error text after checking that neither the
/// password nor any line of the `key_pems` is in it.
pub(crate) async fn fails_keeping_keys(cfg: &Config, key_pems: &[String]) -> (Error, String) {
    let e = match Client::connect(cfg).await {
        Ok(_) => panic!("connected with {cfg:?}"),
        Err(e) => e,
    };
    let text = format!("{} | {e:?}", Report(&e));
    assert_no_secrets(&text, key_pems);
    (e, text)
}

fn assert_no_secrets(text: &str, key_pems: &[String]) {
    assert!(
        !text.contains(REPL_SCRAM.password.unwrap()),
        "password in: {text}"
    );
    for pem in key_pems {
        for line in pem_body_lines(pem) {
            assert!(!text.contains(line), "key material in: {text}");
        }
    }
}

#[tokio::test]
async fn every_sslmode() {
    let (pg, pki) = tls_cluster();
    let ca = pki.ca.display();
    for (extra, tls) in [
        ("sslmode=disable".to_owned(), false),
        ("sslmode=allow".to_owned(), false),
        ("sslmode=prefer".to_owned(), true),
        (String::new(), true),
        ("sslmode=require".to_owned(), true),
        (format!("sslmode=verify-ca sslrootcert={ca}"), true),
        (format!("sslmode=verify-full sslrootcert={ca}"), true),
        // The certificate names localhost too.
        (
            format!("sslmode=verify-full sslrootcert={ca} host=localhost hostaddr=127.0.0.1"),
            true,
        ),
        (
            format!("sslmode=verify-full sslrootcert={ca} sslsni=0"),
            true,
        ),
    ] {
        let c = connect(&scram(&pg, &extra)).await;
        assert_eq!(uses_tls(&pg, &c), tls, "{extra}");
        // Over TLS the server offers SCRAM-SHA-256-PLUS and it is taken (channel_binding
        // defaults to prefer).
        let want = if tls {
            AuthMethod::ScramSha256Plus
        } else {
            AuthMethod::ScramSha256
        };
        assert_eq!(c.server_info().auth_method, Some(want), "{extra}");
        let mut c = c;
        c.identify_system().await.unwrap();
        c.close().await.unwrap();
    }
    // SQL connections too.
    let c = Client::connect_sql(&scram(
        &pg,
        &format!("sslmode=verify-full sslrootcert={ca}"),
    ))
    .await
    .unwrap();
    assert!(uses_tls(&pg, &c));
}

#[tokio::test]
async fn certificate_checks() {
    let (pg, pki) = tls_cluster();
    let (ca, other) = (pki.ca.display(), pki.other_ca.display());
    // A CA that did not sign the server's certificate.
    for mode in ["verify-ca", "verify-full"] {
        let (e, text) = fails(
            &scram(&pg, &format!("sslmode={mode} sslrootcert={other}")),
            Some(&pki),
        )
        .await;
        assert!(text.contains("SSL handshake failed"), "{text}");
        assert!(text.contains("invalid peer certificate"), "{text}");
        assert!(matches!(e, Error::Io { .. }), "{e:?}");
    }
    // require verifies nothing without a root certificate, but the chain when one is named
    // (as libpq does).
    connect(&scram(
        &pg,
        "sslmode=require sslrootcert=/nonexistent/root.crt",
    ))
    .await;
    fails(
        &scram(&pg, &format!("sslmode=require sslrootcert={other}")),
        Some(&pki),
    )
    .await;
    connect(&scram(&pg, &format!("sslmode=require sslrootcert={ca}"))).await;
    // A host name the certificate does not carry: verify-full fails, verify-ca passes.
    let wrong = "host=db.wrong.example hostaddr=127.0.0.1";
    let (_, text) = fails(
        &scram(
            &pg,
            &format!("sslmode=verify-full sslrootcert={ca} {wrong}"),
        ),
        Some(&pki),
    )
    .await;
    assert!(text.contains("not valid for name"), "{text}");
    assert!(text.contains("db.wrong.example"), "{text}");
    connect(&scram(
        &pg,
        &format!("sslmode=verify-ca sslrootcert={ca} {wrong}"),
    ))
    .await;
    // A wrong IP address: the certificate names 127.0.0.1 only.
    let (_, text) = fails(
        &scram(
            &pg,
            &format!("sslmode=verify-full sslrootcert={ca} host=127.0.0.2 hostaddr=127.0.0.1"),
        ),
        Some(&pki),
    )
    .await;
    assert!(text.contains("not valid for name"), "{text}");
    // verify-ca without a root certificate is refused before connecting, with libpq's hint.
    let (e, text) = fails(
        &scram(&pg, "sslmode=verify-ca sslrootcert=/nonexistent/root.crt"),
        Some(&pki),
    )
    .await;
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    assert!(
        text.contains("root certificate file \"/nonexistent/root.crt\" does not exist"),
        "{text}"
    );
}

#[tokio::test]
async fn client_certificate_authenticates() {
    let (pg, pki) = tls_cluster();
    let base = format!(
        "host=127.0.0.1 port={} user={CERT_USER} dbname=postgres passfile=/nonexistent \
         sslrootcert={} sslcert={} sslkey={}",
        pg.port(),
        pki.ca.display(),
        pki.client_cert.display(),
        pki.client_key.display()
    );
    for mode in ["require", "verify-ca", "verify-full", "prefer"] {
        let cfg = Config::parse(&format!("{base} sslmode={mode}")).unwrap();
        let mut c = connect(&cfg).await;
        assert!(uses_tls(&pg, &c), "{mode}");
        // cert authentication: the server says AuthenticationOk at once.
        assert_eq!(c.server_info().auth_method, Some(AuthMethod::Trust));
        c.identify_system().await.unwrap();
        c.close().await.unwrap();
    }
    // allow: the plaintext attempt is rejected (the line is hostssl), so it retries over TLS.
    let c = connect(&Config::parse(&format!("{base} sslmode=allow")).unwrap()).await;
    assert!(uses_tls(&pg, &c));
    // Without a certificate the server has no line for us.
    let cfg = Config::parse(&format!(
        "host=127.0.0.1 port={} user={CERT_USER} dbname=postgres sslmode=require \
         sslcert=/nonexistent/c.crt passfile=/nonexistent",
        pg.port()
    ))
    .unwrap();
    let (e, _) = fails(&cfg, Some(&pki)).await;
    assert_eq!(e.code(), Some("28000"), "{e}");
    // channel_binding=require cannot be met by cert authentication.
    let (e, text) = fails(
        &Config::parse(&format!("{base} sslmode=require channel_binding=require")).unwrap(),
        Some(&pki),
    )
    .await;
    assert!(matches!(e, Error::Auth(_)), "{e:?}");
    assert!(text.contains("without channel binding"), "{text}");
    // A key file others can read is refused, as libpq does, without showing it.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pki.client_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (e, text) = fails(
        &Config::parse(&format!("{base} sslmode=require")).unwrap(),
        Some(&pki),
    )
    .await;
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    assert!(text.contains("has group or world access"), "{text}");
    // A key that is not a key.
    std::fs::set_permissions(&pki.client_key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let not_a_key = pki.client_key.with_file_name("not-a-key");
    std::fs::write(
        &not_a_key,
        pki.key_pems[1].replace("PRIVATE KEY", "NOTHING"),
    )
    .unwrap();
    std::fs::set_permissions(&not_a_key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cfg = Config::parse(&format!(
        "{base} sslmode=require sslkey={}",
        not_a_key.display()
    ))
    .unwrap();
    let (_, text) = fails(&cfg, Some(&pki)).await;
    assert!(text.contains("could not load private key file"), "{text}");
}

#[tokio::test]
async fn channel_binding() {
    let (pg, pki) = tls_cluster();
    let ca = pki.ca.display();
    let c = connect(&scram(
        &pg,
        &format!("sslmode=verify-full sslrootcert={ca} channel_binding=require"),
    ))
    .await;
    assert_eq!(
        c.server_info().auth_method,
        Some(AuthMethod::ScramSha256Plus)
    );
    let c = connect(&scram(&pg, "sslmode=require channel_binding=require")).await;
    assert_eq!(
        c.server_info().auth_method,
        Some(AuthMethod::ScramSha256Plus)
    );
    // disable: plain SCRAM over TLS.
    let c = connect(&scram(&pg, "sslmode=require channel_binding=disable")).await;
    assert_eq!(c.server_info().auth_method, Some(AuthMethod::ScramSha256));
    assert!(uses_tls(&pg, &c));
    // require without TLS fails before any credential is sent.
    for mode in ["disable", "allow"] {
        let (e, text) = fails(
            &scram(&pg, &format!("sslmode={mode} channel_binding=require")),
            Some(&pki),
        )
        .await;
        assert!(matches!(e, Error::Auth(_)), "{e:?}");
        assert!(
            text.contains("channel binding required, but SSL not in use"),
            "{text}"
        );
    }
    // An MD5 role: no SASL at all.
    let cfg = Config::parse(&format!(
        "host=127.0.0.1 port={} user={} password={} sslmode=require channel_binding=require",
        pg.port(),
        REPL_MD5.name,
        REPL_MD5.password.unwrap()
    ))
    .unwrap();
    let (e, text) = fails(&cfg, Some(&pki)).await;
    assert!(matches!(e, Error::Auth(_)), "{e:?}");
    assert!(
        text.contains("channel binding required but not supported"),
        "{text}"
    );
    assert!(!text.contains(REPL_MD5.password.unwrap()), "{text}");
    // A wrong password over PLUS: the server's error, and no password in it.
    let mut cfg = scram(&pg, "sslmode=require");
    cfg.password = Some("wrong-secret".into());
    let (e, text) = fails(&cfg, Some(&pki)).await;
    assert_eq!(e.code(), Some("28P01"), "{text}");
    assert!(!text.contains("wrong-secret"), "{text}");
}

#[tokio::test]
async fn server_without_tls() {
    let pg = cluster(&[]);
    // prefer: the server answers N, plaintext on the same connection.
    let c = connect(&scram(&pg, "sslmode=prefer")).await;
    assert!(!uses_tls(&pg, &c));
    assert_eq!(c.server_info().auth_method, Some(AuthMethod::ScramSha256));
    let c = connect(&scram(&pg, "sslmode=allow")).await;
    assert!(!uses_tls(&pg, &c));
    for mode in ["require", "verify-ca", "verify-full"] {
        let (_, text) = fails(
            &scram(&pg, &format!("sslmode={mode} sslrootcert=system")),
            None,
        )
        .await;
        // sslrootcert=system is verify-full only.
        if mode != "verify-full" {
            assert!(
                text.contains("may not be used with sslrootcert=system"),
                "{text}"
            );
            continue;
        }
        assert!(
            text.contains("server does not support SSL, but SSL was required"),
            "{text}"
        );
    }
    let (_, text) = fails(&scram(&pg, "sslmode=require"), None).await;
    assert!(
        text.contains("server does not support SSL, but SSL was required"),
        "{text}"
    );
    // Certificate files are read only once a server agrees to TLS, as in libpq: one that
    // cannot be read (here a directory) is no error with a server that declines.
    let dir = tempfile::tempdir().unwrap();
    let unreadable = format!(
        "sslcert={0} sslkey={0}/key sslrootcert={0}",
        dir.path().display()
    );
    for mode in ["prefer", "allow"] {
        let c = connect(&scram(&pg, &format!("sslmode={mode} {unreadable}"))).await;
        assert!(!uses_tls(&pg, &c));
    }
    let (_, text) = fails(&scram(&pg, &format!("sslmode=require {unreadable}")), None).await;
    assert!(
        text.contains("server does not support SSL, but SSL was required"),
        "{text}"
    );
}

#[tokio::test]
async fn direct_negotiation() {
    let (pg, pki) = tls_cluster();
    let cfg = scram(
        &pg,
        &format!(
            "sslmode=verify-full sslrootcert={} sslnegotiation=direct",
            pki.ca.display()
        ),
    );
    if pg.version() >= 17 {
        let c = connect(&cfg).await;
        assert!(uses_tls(&pg, &c));
        assert_eq!(
            c.server_info().auth_method,
            Some(AuthMethod::ScramSha256Plus)
        );
    } else {
        // An older server reads the ClientHello as a startup packet and hangs up.
        let (_, text) = fails(&cfg, Some(&pki)).await;
        assert!(text.contains("SSL handshake failed"), "{text}");
    }
}
