//! A throwaway certificate authority for the TLS tests (rcgen), and a server using it.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use testenv::Cluster;

/// The role that logs in with a client certificate (`hostssl … cert`).
pub const CERT_USER: &str = "repl_cert";

/// Files of one test's PKI, in a directory of the cluster's (removed with it).
pub struct Pki {
    /// The CA that signed the server's and the client's certificates.
    pub ca: PathBuf,
    /// A CA that signed nothing the server has.
    pub other_ca: PathBuf,
    /// The client certificate for [`CERT_USER`] and its key (mode 0600).
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// The PEM text of the client's and the server's keys, to check they never leak.
    pub key_pems: Vec<String>,
}

fn ca(name: &str) -> (CertificateParams, KeyPair, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let pem = params.self_signed(&key).unwrap().pem();
    (params, key, pem)
}

fn leaf(issuer: &Issuer<'_, KeyPair>, cn: &str, names: &[&str], ips: &[&str]) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    for ip in ips {
        params
            .subject_alt_names
            .push(SanType::IpAddress(ip.parse().unwrap()));
    }
    params.distinguished_name.push(DnType::CommonName, cn);
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// A server with TLS on (certificate for `localhost` and `127.0.0.1`), a role
/// [`CERT_USER`] that must log in with a client certificate over TLS, and the files.
pub fn tls_cluster() -> (Cluster, Pki) {
    let pg = crate::common::cluster(&[]);
    let (ca_params, ca_key, ca_pem) = ca("pgwire-repl test CA");
    let (_, _, other_pem) = ca("some other CA");
    let issuer = Issuer::new(ca_params, ca_key);
    let (server_cert, server_key) = leaf(&issuer, "localhost", &["localhost"], &["127.0.0.1"]);
    let (client_cert, client_key) = leaf(&issuer, CERT_USER, &[], &[]);

    let dir = pg.temp_dir().join("client-pki");
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str, mode: u32| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    };
    let pki = Pki {
        ca: write("ca.crt", &ca_pem, 0o644),
        other_ca: write("other-ca.crt", &other_pem, 0o644),
        client_cert: write("client.crt", &client_cert, 0o644),
        client_key: write("client.key", &client_key, 0o600),
        key_pems: vec![client_key.clone(), server_key.clone()],
    };

    pg.sql(&format!("CREATE ROLE {CERT_USER} LOGIN REPLICATION"))
        .unwrap();
    pg.prepend_hba(&[
        &format!("hostssl all         {CERT_USER} 127.0.0.1/32 cert"),
        &format!("hostssl replication {CERT_USER} 127.0.0.1/32 cert"),
    ])
    .unwrap();
    pg.enable_ssl(&server_cert, &server_key, Some(&ca_pem))
        .unwrap();
    (pg, pki)
}

/// The base64 body lines of a PEM text (what a leak would show).
pub fn pem_body_lines(pem: &str) -> Vec<&str> {
    pem.lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 20)
        .collect()
}
