//! A throwaway certificate authority for TLS tests (feature `pki`, rcgen): a server
//! certificate for `localhost` and `127.0.0.1`, a client certificate for [`CERT_USER`], and
//! a second CA that signed nothing, written into the cluster's directory (removed with it).
//! [`openssl`] makes the same with the `openssl` command line, version 1 certificates too.

pub mod openssl;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};

use crate::error::{Error, Result};
use crate::Cluster;

/// The role that logs in with a client certificate (`hostssl … cert`).
pub const CERT_USER: &str = "repl_cert";

/// Files of one test's PKI.
#[derive(Debug)]
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

fn rc(e: rcgen::Error) -> Error {
    Error::new(format!("certificate generation failed: {e}"))
}

fn ca(name: &str) -> Result<(CertificateParams, KeyPair, String)> {
    let key = KeyPair::generate().map_err(rc)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(rc)?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let pem = params.self_signed(&key).map_err(rc)?.pem();
    Ok((params, key, pem))
}

fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    cn: &str,
    names: &[&str],
    ips: &[std::net::IpAddr],
) -> Result<(String, String)> {
    let key = KeyPair::generate().map_err(rc)?;
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names).map_err(rc)?;
    for ip in ips {
        params.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    params.distinguished_name.push(DnType::CommonName, cn);
    let cert = params.signed_by(&key, issuer).map_err(rc)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Turns TLS on in `pg` with certificates from a new CA, and adds the role [`CERT_USER`],
/// which must log in with a client certificate over TLS (`hostssl … cert`, for SQL and
/// replication). Restarts the server.
pub fn enable_test_pki(pg: &Cluster) -> Result<Pki> {
    let (ca_params, ca_key, ca_pem) = ca("testenv CA")?;
    let (_, _, other_pem) = ca("another CA")?;
    let issuer = Issuer::new(ca_params, ca_key);
    let localhost = std::net::IpAddr::from([127, 0, 0, 1]);
    let (server_cert, server_key) = leaf(&issuer, "localhost", &["localhost"], &[localhost])?;
    let (client_cert, client_key) = leaf(&issuer, CERT_USER, &[], &[])?;

    let dir = pg.temp_dir().join("client-pki");
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::with_source(format!("cannot create {}", dir.display()), e))?;
    let write = |name: &str, text: &str, mode: u32| -> Result<PathBuf> {
        let path = dir.join(name);
        std::fs::write(&path, text)
            .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)))
            .map_err(|e| Error::with_source(format!("cannot write {}", path.display()), e))?;
        Ok(path)
    };
    let pki = Pki {
        ca: write("ca.crt", &ca_pem, 0o644)?,
        other_ca: write("other-ca.crt", &other_pem, 0o644)?,
        client_cert: write("client.crt", &client_cert, 0o644)?,
        client_key: write("client.key", &client_key, 0o600)?,
        key_pems: vec![client_key, server_key.clone()],
    };
    allow_cert_login(pg)?;
    pg.enable_ssl(&server_cert, &server_key, Some(&ca_pem))?;
    Ok(pki)
}

/// Adds the role [`CERT_USER`] and its `hostssl … cert` lines (for SQL and replication).
fn allow_cert_login(pg: &Cluster) -> Result<()> {
    pg.sql(&format!("CREATE ROLE {CERT_USER} LOGIN REPLICATION"))?;
    pg.prepend_hba(&[
        &format!("hostssl all         {CERT_USER} 127.0.0.1/32 cert"),
        &format!("hostssl replication {CERT_USER} 127.0.0.1/32 cert"),
    ])
}

/// The base64 body lines of a PEM text (what a leak would show).
pub fn pem_body_lines(pem: &str) -> Vec<&str> {
    pem.lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 20)
        .collect()
}
