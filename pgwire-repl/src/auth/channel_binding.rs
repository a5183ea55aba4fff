//! SCRAM channel binding, sans-IO: the `channel_binding` setting and the
//! `tls-server-end-point` data (RFC 5929 §4.1) computed from the server's certificate.
//!
//! `tls-server-end-point` is a hash of the server's leaf certificate (DER), with the hash
//! function of the certificate's own signature: "if the certificate's signatureAlgorithm
//! uses a single hash function and that hash function is either MD5 or SHA-1, then use
//! SHA-256; if the certificate's signatureAlgorithm uses a single hash function and that
//! hash function neither MD5 nor SHA-1, then use the hash function associated with the
//! certificate's signatureAlgorithm". A signature without a single hash (Ed25519,
//! RSASSA-PSS) has no binding data; PostgreSQL's server cannot compute it either.

use std::fmt;
use std::str::FromStr;

use sha2::Digest;

use crate::error::{Error, Result};

/// libpq's `channel_binding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ChannelBindingMode {
    /// Never bind, even when the server offers SCRAM-SHA-256-PLUS.
    Disable,
    /// Bind when TLS is in use and the server offers SCRAM-SHA-256-PLUS.
    #[default]
    Prefer,
    /// Bind or fail: without TLS, or when the server offers no PLUS mechanism, the
    /// connection fails before any credential is sent.
    Require,
}

impl ChannelBindingMode {
    /// libpq's name for the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelBindingMode::Disable => "disable",
            ChannelBindingMode::Prefer => "prefer",
            ChannelBindingMode::Require => "require",
        }
    }
}

impl fmt::Display for ChannelBindingMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ChannelBindingMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<ChannelBindingMode> {
        Ok(match s {
            "disable" => ChannelBindingMode::Disable,
            "prefer" => ChannelBindingMode::Prefer,
            "require" => ChannelBindingMode::Require,
            _ => {
                return Err(Error::config(format!(
                    "invalid channel_binding value: \"{s}\""
                )))
            }
        })
    }
}

/// What the transport offers for channel binding.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum TlsBinding {
    /// A plaintext connection (or a Unix socket): nothing to bind to.
    #[default]
    NoTls,
    /// TLS, with the `tls-server-end-point` data of the server's certificate.
    ServerEndPoint(Vec<u8>),
    /// TLS, but no binding data could be computed (the reason says why).
    Unavailable(String),
}

impl TlsBinding {
    /// The binding for a TLS connection whose server presented `cert_der` as its leaf
    /// certificate (`None`: it presented none).
    pub fn from_server_certificate(cert_der: Option<&[u8]>) -> TlsBinding {
        match cert_der.map(tls_server_end_point) {
            Some(Ok(hash)) => TlsBinding::ServerEndPoint(hash),
            Some(Err(e)) => TlsBinding::Unavailable(e.to_string()),
            None => TlsBinding::Unavailable("the server sent no certificate".into()),
        }
    }

    pub fn is_tls(&self) -> bool {
        !matches!(self, TlsBinding::NoTls)
    }
}

impl fmt::Debug for TlsBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsBinding::NoTls => f.write_str("NoTls"),
            TlsBinding::ServerEndPoint(h) => write!(f, "ServerEndPoint({} bytes)", h.len()),
            TlsBinding::Unavailable(why) => f.debug_tuple("Unavailable").field(why).finish(),
        }
    }
}

/// The hash functions a certificate signature may imply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hash {
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

/// Signature algorithm OIDs (DER content octets) and the binding hash each implies.
const SIGNATURE_HASHES: &[(&[u8], Hash)] = &[
    // md5WithRSAEncryption, sha1WithRSAEncryption (1.2.840.113549.1.1.4 / .5): SHA-256.
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04],
        Hash::Sha256,
    ),
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05],
        Hash::Sha256,
    ),
    // sha256/384/512/224WithRSAEncryption (1.2.840.113549.1.1.11 to .14).
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b],
        Hash::Sha256,
    ),
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c],
        Hash::Sha384,
    ),
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d],
        Hash::Sha512,
    ),
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0e],
        Hash::Sha224,
    ),
    // ecdsa-with-SHA1 (1.2.840.10045.4.1): SHA-256.
    (&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01], Hash::Sha256),
    // ecdsa-with-SHA224/256/384/512 (1.2.840.10045.4.3.1 to .4).
    (
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x01],
        Hash::Sha224,
    ),
    (
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02],
        Hash::Sha256,
    ),
    (
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03],
        Hash::Sha384,
    ),
    (
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04],
        Hash::Sha512,
    ),
    // dsa-with-sha1 (1.2.840.10040.4.3): SHA-256.
    (&[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x03], Hash::Sha256),
    // dsa-with-sha224/256 (2.16.840.1.101.3.4.3.1 / .2).
    (
        &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x01],
        Hash::Sha224,
    ),
    (
        &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x02],
        Hash::Sha256,
    ),
];

/// The `tls-server-end-point` channel binding data for a server certificate (DER).
pub fn tls_server_end_point(cert_der: &[u8]) -> Result<Vec<u8>> {
    let oid = signature_algorithm(cert_der).ok_or_else(|| {
        Error::Auth("could not parse the server certificate for channel binding".into())
    })?;
    let hash = SIGNATURE_HASHES
        .iter()
        .find(|(known, _)| *known == oid)
        .map(|&(_, h)| h)
        .ok_or_else(|| {
            Error::Auth(format!(
                "could not determine the hash for channel binding from the server certificate's \
                 signature algorithm (OID {})",
                oid_text(oid)
            ))
        })?;
    Ok(match hash {
        Hash::Sha224 => sha2::Sha224::digest(cert_der).to_vec(),
        Hash::Sha256 => sha2::Sha256::digest(cert_der).to_vec(),
        Hash::Sha384 => sha2::Sha384::digest(cert_der).to_vec(),
        Hash::Sha512 => sha2::Sha512::digest(cert_der).to_vec(),
    })
}

/// The OID (content octets) of a certificate's outer `signatureAlgorithm`:
/// `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE, signatureAlgorithm SEQUENCE
/// { algorithm OBJECT IDENTIFIER, parameters ANY OPTIONAL }, signatureValue BIT STRING }`.
fn signature_algorithm(der: &[u8]) -> Option<&[u8]> {
    let (cert, rest) = der_element(der, 0x30)?;
    if !rest.is_empty() {
        return None;
    }
    let (_tbs, rest) = der_element(cert, 0x30)?;
    let (alg, _signature) = der_element(rest, 0x30)?;
    let (oid, _params) = der_element(alg, 0x06)?;
    Some(oid)
}

/// Splits one DER element with tag `tag` off `input`: (content, what follows).
fn der_element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = input.split_first()?;
    if t != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        // Long form: the low bits count the length octets (at most 4 here; a certificate
        // is far smaller than 4 GiB).
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (octets, rest) = rest.split_at(n);
        let len = octets
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    Some(rest.split_at(len))
}

/// Dotted text of an OID, for error messages.
fn oid_text(oid: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for &b in oid {
        acc = (acc << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (acc / 40).min(2);
                arcs.push(first);
                arcs.push(acc - first * 40);
            } else {
                arcs.push(acc);
            }
            acc = 0;
        }
        if acc > u64::MAX >> 8 {
            return "?".into();
        }
    }
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate-shaped DER value with the given signature algorithm OID: an empty
    /// tbsCertificate, the algorithm, and an empty signature.
    fn fake_cert(oid: &[u8]) -> Vec<u8> {
        let mut alg = vec![0x06, oid.len() as u8];
        alg.extend_from_slice(oid);
        alg.extend_from_slice(&[0x05, 0x00]);
        let mut body = vec![0x30, 0x00, 0x30, alg.len() as u8];
        body.extend_from_slice(&alg);
        body.extend_from_slice(&[0x03, 0x01, 0x00]);
        let mut cert = vec![0x30, body.len() as u8];
        cert.extend_from_slice(&body);
        cert
    }

    #[test]
    fn hash_follows_the_signature_algorithm() {
        for (oid, len) in [
            // md5/sha1 with RSA and ECDSA/DSA with SHA-1: SHA-256.
            (
                &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04][..],
                32,
            ),
            (&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05], 32),
            (&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01], 32),
            (&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b], 32),
            (&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c], 48),
            (&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d], 64),
            (&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x01], 28),
            (&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03], 48),
        ] {
            let cert = fake_cert(oid);
            let hash = tls_server_end_point(&cert).unwrap();
            assert_eq!(hash.len(), len, "{}", oid_text(oid));
        }
        // The hash covers the whole certificate.
        let cert = fake_cert(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]);
        assert_eq!(
            tls_server_end_point(&cert).unwrap(),
            sha2::Sha256::digest(&cert).to_vec()
        );
    }

    #[test]
    fn algorithms_without_a_single_hash_are_errors() {
        // Ed25519 (1.3.101.112) and RSASSA-PSS (1.2.840.113549.1.1.10).
        let e = tls_server_end_point(&fake_cert(&[0x2b, 0x65, 0x70])).unwrap_err();
        assert!(e.to_string().contains("OID 1.3.101.112"), "{e}");
        let pss = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
        let e = tls_server_end_point(&fake_cert(&pss)).unwrap_err();
        assert!(e.to_string().contains("OID 1.2.840.113549.1.1.10"), "{e}");
    }

    #[test]
    fn malformed_der_is_an_error_not_a_panic() {
        let good = fake_cert(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]);
        for n in 0..good.len() {
            assert!(tls_server_end_point(&good[..n]).is_err(), "{n}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(tls_server_end_point(&trailing).is_err());
        for bad in [
            &[0x30, 0x85, 0, 0, 0, 0, 1][..],
            &[0x30, 0x80],
            &[0x31, 0x00],
        ] {
            assert!(tls_server_end_point(bad).is_err());
        }
        // Long-form lengths parse.
        assert_eq!(
            der_element(&[0x04, 0x81, 0x01, 0xaa, 0xbb], 0x04),
            Some((&[0xaa][..], &[0xbb][..]))
        );
    }

    #[test]
    fn modes() {
        for m in [
            ChannelBindingMode::Disable,
            ChannelBindingMode::Prefer,
            ChannelBindingMode::Require,
        ] {
            assert_eq!(m.as_str().parse::<ChannelBindingMode>().unwrap(), m);
        }
        assert_eq!(ChannelBindingMode::default(), ChannelBindingMode::Prefer);
        assert_eq!(
            "on".parse::<ChannelBindingMode>().unwrap_err().to_string(),
            "invalid channel_binding value: \"on\""
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = tls_server_end_point(&bytes);
        }
    }
}
