//! Client certificates made by the `openssl` command line (testenv::pki::openssl), as
//! people make them by hand: version 1 by the usual recipe, version 3 with an extension
//! file, and the common key types and encodings (RSA PKCS#8 and PKCS#1, ECDSA P-256 SEC1
//! and P-384, Ed25519). Also files that cannot be used, which must fail before any
//! network traffic, with libpq's messages.

use std::path::Path;

use pgwire_repl::auth::AuthMethod;
use pgwire_repl::{Client, Config, Error};
use testenv::pki::openssl::{cert_version, enable_openssl_pki, Issued, KeyType, OpensslCa};
use testenv::pki::CERT_USER;

use crate::common::cluster;
use crate::tls::{fails_keeping_keys, uses_tls};

/// `CERT_USER` with a client certificate and key, verify-full against `ca`.
fn cert_config(port: u16, ca: &Path, cert: &Path, key: &Path) -> Config {
    Config::parse(&format!(
        "host=127.0.0.1 port={port} user={CERT_USER} dbname=postgres passfile=/nonexistent \
         sslmode=verify-full sslrootcert={} sslcert={} sslkey={}",
        ca.display(),
        cert.display(),
        key.display()
    ))
    .unwrap()
}

#[tokio::test]
async fn openssl_client_certificates_authenticate() {
    let pg = cluster(&[]);
    let pki = enable_openssl_pki(&pg).unwrap();
    // What this test is about: the usual recipe makes version 1 (webpki refuses those).
    assert_eq!(cert_version(&pki.v1.cert).unwrap(), 1);
    assert_eq!(cert_version(&pki.v3.cert).unwrap(), 3);
    let all: Vec<&Issued> = [&pki.v1, &pki.v3]
        .into_iter()
        .chain(&pki.other_keys)
        .collect();
    for c in all {
        let what = format!("v{} {:?}", c.version, c.key_type);
        let cfg = cert_config(pg.port(), &pki.ca, &c.cert, &c.key);
        let mut client = Client::connect(&cfg)
            .await
            .unwrap_or_else(|e| panic!("{what}: {}", pgwire_repl::error::Report(&e)));
        assert!(uses_tls(&pg, &client), "{what}");
        // cert authentication: AuthenticationOk at once, and the server saw our certificate.
        assert_eq!(
            client.server_info().auth_method,
            Some(AuthMethod::Trust),
            "{what}"
        );
        let pid = client.server_info().process_id;
        let dn = pg
            .sql(&format!(
                "SELECT client_dn FROM pg_stat_ssl WHERE pid = {pid}"
            ))
            .unwrap();
        assert_eq!(dn.trim(), format!("/CN={CERT_USER}"), "{what}");
        client.identify_system().await.unwrap();
        client.close().await.unwrap();
    }
    // SQL connections too.
    let cfg = cert_config(pg.port(), &pki.ca, &pki.v1.cert, &pki.v1.key);
    let c = Client::connect_sql(&cfg).await.unwrap();
    assert!(uses_tls(&pg, &c));
    // verify-full checked the openssl-made server certificate: another name fails.
    let mut cfg = cfg;
    cfg.host = Some("db.wrong.example".into());
    cfg.hostaddr = Some("127.0.0.1".into());
    let (_, text) = fails_keeping_keys(&cfg, &pki.key_pems).await;
    assert!(text.contains("not valid for name"), "{text}");
}

/// A port where something answers the SSLRequest with `S` and then waits: the client reads
/// its certificate files only once a server has agreed to TLS (as libpq does), so that is
/// where a bad file must fail it, before any handshake byte.
async fn agrees_to_tls() -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 8];
                if sock.read_exact(&mut request).await.is_ok() {
                    let _ = sock.write_all(b"S").await;
                    let mut rest = Vec::new();
                    let _ = sock.read_to_end(&mut rest).await;
                    assert!(rest.is_empty(), "a handshake began: {} bytes", rest.len());
                }
            });
        }
    });
    port
}

/// Fails once the server agrees to TLS, with a configuration error; returns its text.
async fn fails_to_load(cert: &Path, key: &Path, ca: &Path, key_pems: &[String]) -> String {
    let cfg = cert_config(agrees_to_tls().await, ca, cert, key);
    let (e, text) = fails_keeping_keys(&cfg, key_pems).await;
    assert!(matches!(e, Error::Config(_)), "{text}");
    text
}

#[tokio::test]
async fn unusable_client_certificate_files() {
    // No server reads these files: the client fails as soon as TLS is agreed.
    let dir = tempfile::Builder::new()
        .prefix("pgwire-repl-openssl-")
        .tempdir()
        .unwrap();
    let dir = dir.path();
    let ca = OpensslCa::new(dir, "openssl CA").unwrap();
    let v1 = ca.client_v1("v1", CERT_USER, KeyType::Rsa).unwrap();
    let v3 = ca.client_v3("v3", CERT_USER, KeyType::Rsa).unwrap();
    let ed25519 = ca
        .client_v1("ed25519", CERT_USER, KeyType::Ed25519)
        .unwrap();
    let ed448 = ca.client_v1("ed448", CERT_USER, KeyType::Ed448).unwrap();
    let key_pems: Vec<String> = [&v1, &v3, &ed25519, &ed448]
        .iter()
        .map(|c| std::fs::read_to_string(&c.key).unwrap())
        .collect();
    assert_eq!(cert_version(&v1.cert).unwrap(), 1);
    let ca = &ca.cert;

    // Another RSA key than the certificate's: OpenSSL's words, as libpq shows them.
    let text = fails_to_load(&v1.cert, &v3.key, ca, &key_pems).await;
    assert!(
        text.contains(&format!(
            "could not load private key file \"{}\": key values mismatch",
            v3.key.display()
        )),
        "{text}"
    );
    // Another type of key altogether.
    let text = fails_to_load(&v1.cert, &ed25519.key, ca, &key_pems).await;
    assert!(
        text.contains(&format!(
            "certificate does not match private key file \"{}\": key type mismatch",
            ed25519.key.display()
        )),
        "{text}"
    );
    // A key type the client cannot sign with: one line, naming the file.
    let text = fails_to_load(&ed448.cert, &ed448.key, ca, &key_pems).await;
    assert!(
        text.contains(&format!(
            "could not load private key file \"{}\": not a usable private key",
            ed448.key.display()
        )),
        "{text}"
    );
    assert!(!text.contains('\n'), "{text}");

    // Certificate files that are not certificates: no PEM at all, a PEM section whose
    // content is no certificate, a directory.
    let garbage = dir.join("garbage.crt");
    std::fs::write(&garbage, "garbage\n").unwrap();
    let not_der = dir.join("not-der.crt");
    std::fs::write(
        &not_der,
        "-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let a_dir = dir.join("dir.crt");
    std::fs::create_dir(&a_dir).unwrap();
    for cert in [&garbage, &not_der, &a_dir] {
        let text = fails_to_load(cert, &v1.key, ca, &key_pems).await;
        assert!(
            text.contains(&format!(
                "could not read certificate file \"{}\"",
                cert.display()
            )),
            "{text}"
        );
    }
}
