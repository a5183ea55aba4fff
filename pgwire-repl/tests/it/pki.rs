//! A server with TLS on and a throwaway CA (testenv::pki).

pub use testenv::pki::{pem_body_lines, Pki, CERT_USER};
use testenv::Cluster;

/// A test server with [`testenv::pki::enable_test_pki`] applied.
pub fn tls_cluster() -> (Cluster, Pki) {
    let pg = crate::common::cluster(&[]);
    let pki = testenv::pki::enable_test_pki(&pg).unwrap();
    (pg, pki)
}
