//! The client certificate (`sslcert`) and its key (`sslkey`), loaded as libpq loads them.
//!
//! rustls' own loader (`with_client_auth_cert`) checks that key and certificate go together
//! by parsing the certificate with webpki, which refuses X.509 version 1 — what the usual
//! `openssl x509 -req` recipe makes, and what libpq and the server take. The client has no
//! reason to judge its own certificate (the server does that), so it is only read here:
//! x509-parser takes its public key out, rustls' key provider (ring) loads the private key,
//! and the two are compared, as OpenSSL does for libpq.
//!
//! Errors name the file and say why in libpq's words; no text from a key file is ever
//! shown.

use std::path::Path;
use std::sync::Arc;

use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::{CertifiedKey, SigningKey, SingleCertAndKey};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::pem_error;
use crate::error::{Error, Result};

/// The certificate chain in `cert` (leaf first) and the key in `key`, checked to belong
/// together, as the one identity the client offers to any server that asks.
pub(super) fn resolver(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<Arc<dyn ResolvesClientCert>> {
    let chain = load_chain(cert)?;
    let signing_key = load_key(key, provider)?;
    check_key_matches(&chain[0], cert, &*signing_key, key)?;
    let certified = CertifiedKey::new(chain, signing_key);
    Ok(Arc::new(SingleCertAndKey::from(certified)))
}

/// Every certificate in the PEM file; at least one, and each one an X.509 certificate (of
/// any version: nothing else about it is checked).
fn load_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let read_error = |why: String| {
        Error::config(format!(
            "could not read certificate file \"{}\": {why}",
            path.display()
        ))
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| {
            Error::config(format!(
                "could not open certificate file \"{}\": {}",
                path.display(),
                pem_error(&e)
            ))
        })?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| read_error(pem_error(&e)))?;
    if certs.is_empty() {
        return Err(read_error("no certificate found".into()));
    }
    for cert in &certs {
        parse(cert).ok_or_else(|| read_error("not a valid X.509 certificate".into()))?;
    }
    Ok(certs)
}

fn parse<'a>(cert: &'a CertificateDer<'_>) -> Option<X509Certificate<'a>> {
    X509Certificate::from_der(cert.as_ref())
        .ok()
        .map(|(_, parsed)| parsed)
}

/// The key, after libpq's permission check, loaded by the crypto provider: RSA (2048 to
/// 4096 bits, ring's limits), ECDSA P-256 or P-384, or Ed25519; PKCS#8, PKCS#1 or SEC1.
fn load_key(path: &Path, provider: &CryptoProvider) -> Result<Arc<dyn SigningKey>> {
    check_key_permissions(path)?;
    let fail = |why: &str| {
        Error::config(format!(
            "could not load private key file \"{}\": {why}",
            path.display()
        ))
    };
    let der = PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => fail(
            "no unencrypted private key found (PKCS#8, PKCS#1 or SEC1 PEM; encrypted keys \
             and sslpassword are not supported)",
        ),
        e => fail(&pem_error(&e)),
    })?;
    // The provider's error says nothing more than this (and must not quote the key).
    provider.key_provider.load_private_key(der).map_err(|_| {
        fail(
            "not a usable private key (RSA of 2048 to 4096 bits, ECDSA P-256 or P-384, or \
             Ed25519 are supported)",
        )
    })
}

/// OpenSSL's check (`SSL_CTX_use_PrivateKey_file` then `SSL_check_private_key` in libpq):
/// the key's public half must be the one in the certificate. Without it a wrong key would
/// only show as a handshake the server breaks off with a vague alert.
fn check_key_matches(
    leaf: &CertificateDer<'_>,
    cert_path: &Path,
    key: &dyn SigningKey,
    key_path: &Path,
) -> Result<()> {
    let leaf = parse(leaf).ok_or_else(|| {
        Error::config(format!(
            "could not read certificate file \"{}\": not a valid X.509 certificate",
            cert_path.display()
        ))
    })?;
    // ring's keys all know their public half; a key that does not cannot be compared, and
    // the server's check of the handshake signature still catches a wrong one.
    let Some(ours) = key.public_key() else {
        return Ok(());
    };
    let Ok((_, ours)) = SubjectPublicKeyInfo::from_der(ours.as_ref()) else {
        return Ok(());
    };
    let theirs = leaf.public_key();
    // Compared as OpenSSL's EVP_PKEY_eq: the algorithm, then the key itself (for EC, the
    // point, whose length implies the curve).
    let (prefix, why) = if ours.algorithm.algorithm != theirs.algorithm.algorithm {
        (
            "certificate does not match private key file",
            "key type mismatch",
        )
    } else if ours.subject_public_key.data != theirs.subject_public_key.data {
        ("could not load private key file", "key values mismatch")
    } else {
        return Ok(());
    };
    Err(Error::config(format!(
        "{prefix} \"{}\": {why}",
        key_path.display()
    )))
}

/// libpq's check: a regular file, with no group or world access if it belongs to us, or
/// at most u=rw,g=r if it belongs to root (and we are not root).
fn check_key_permissions(path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(|e| {
        Error::config(format!(
            "certificate present, but not private key file \"{}\": {e}",
            path.display()
        ))
    })?;
    if !meta.is_file() {
        return Err(Error::config(format!(
            "private key file \"{}\" is not a regular file",
            path.display()
        )));
    }
    let mode = meta.mode();
    let too_open = if Some(meta.uid()) == crate::config::effective_uid() {
        mode & 0o077 != 0
    } else if meta.uid() == 0 {
        mode & 0o037 != 0
    } else {
        false
    };
    if too_open {
        return Err(Error::config(format!(
            "private key file \"{}\" has group or world access; file must have permissions \
             u=rw (0600) or less if owned by the current user, or permissions u=rw,g=r (0640) \
             or less if owned by root",
            path.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn key_permissions() {
        let tmp = tempfile::Builder::new()
            .prefix("pgwire-repl-tls-")
            .tempdir()
            .unwrap();
        let dir = tmp.path();
        let key = dir.join("k.key");
        std::fs::write(
            &key,
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        // Our own file: no group or world access at all.
        for (mode, ok) in [
            (0o600, true),
            (0o400, true),
            (0o700, true),
            (0o640, false),
            (0o644, false),
            (0o660, false),
        ] {
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
            let r = check_key_permissions(&key);
            assert_eq!(r.is_ok(), ok, "{mode:o}: {r:?}");
            if let Err(e) = r {
                assert!(e.to_string().contains("has group or world access"), "{e}");
            }
        }
        assert!(check_key_permissions(dir)
            .unwrap_err()
            .to_string()
            .contains("is not a regular file"));
        let provider = rustls::crypto::ring::default_provider();
        // A PEM key section that holds no key: one line, none of its text.
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = load_key(&key, &provider).unwrap_err().to_string();
        assert!(
            !e.contains("c2VjcmV0") && e.contains("not a usable private key"),
            "{e}"
        );
        // A key that does not parse: the error shows none of its text.
        std::fs::write(&key, "garbage c2VjcmV0\n").unwrap();
        let e = load_key(&key, &provider).unwrap_err().to_string();
        assert!(
            !e.contains("c2VjcmV0") && e.contains("no unencrypted private key"),
            "{e}"
        );
    }
}
