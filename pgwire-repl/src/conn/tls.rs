//! TLS over the TCP stream, with rustls (ring provider; no OpenSSL).
//!
//! Two ways in, as libpq 17: the classic one sends an SSLRequest (8 bytes) and reads the
//! server's one-byte answer, `S` to go on with the handshake or `N` for no TLS; the direct
//! one (`sslnegotiation=direct`, servers 17 and later) starts the handshake at once. ALPN
//! `postgresql` is offered in both, as libpq does.
//!
//! What is checked follows `sslmode` (see [`SslMode`]): nothing but the handshake's
//! signatures for `require` without a root certificate; the chain against `sslrootcert`
//! for `verify-ca` (and for any mode when a root certificate file exists, as libpq); the
//! chain and the host name (a DNS name or an IP address in the certificate) for
//! `verify-full`. The client certificate and its key are loaded in `client_cert`.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::socket::{describe, BoxTransport};
use crate::auth::TlsBinding;
use crate::config::{ConnectParams, HostParams, RootCert, SslMode, SslNegotiation};
use crate::error::{Error, Result};
use crate::protocol::frontend;

mod client_cert;

/// The ALPN protocol name PostgreSQL 17 registered.
const ALPN: &[u8] = b"postgresql";

/// The TLS client for one connection attempt (all its hosts): the rustls configuration
/// built from the files once.
pub(crate) struct TlsConnector {
    config: Arc<ClientConfig>,
    negotiation: SslNegotiation,
}

/// How TLS negotiation with one server ended.
pub(crate) enum Negotiated {
    /// TLS is up.
    Tls(BoxTransport, TlsBinding),
    /// The server answered `N`: go on in plaintext on the same stream.
    Declined(TcpStream),
    /// The server answered the SSLRequest with an error (a very old server, or something
    /// that is not PostgreSQL); the stream is unusable.
    Refused,
    /// The handshake failed (certificate not trusted, protocol error, …).
    Failed(Error),
}

impl TlsConnector {
    /// Loads the root and client certificates. Errors here concern every host alike.
    pub(crate) fn new(p: &ConnectParams) -> Result<TlsConnector> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let algorithms = provider.signature_verification_algorithms;
        let verify_chain = p.tls.verifies_chain(p.sslmode);
        let roots = if verify_chain {
            Some(Arc::new(load_roots(&p.tls.root_cert)?))
        } else {
            None
        };
        let verifier = Arc::new(Verifier {
            roots,
            check_name: p.sslmode == SslMode::VerifyFull,
            algorithms,
        });
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::config(format!("could not set up TLS: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = match (&p.tls.client_cert, &p.tls.client_key) {
            (Some(cert), Some(key)) => {
                let resolver = client_cert::resolver(cert, key, builder.crypto_provider())?;
                builder.with_client_cert_resolver(resolver)
            }
            (Some(_), None) => {
                return Err(Error::config(
                    "certificate present, but no private key file: set \"sslkey\"",
                ))
            }
            _ => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![ALPN.to_vec()];
        config.enable_sni = p.tls.sni;
        Ok(TlsConnector {
            config: Arc::new(config),
            negotiation: p.tls.negotiation,
        })
    }

    /// The TLS handshake with the server at the other end of `tcp` (after it answered `S`
    /// to the SSLRequest, or at once with `sslnegotiation=direct`), `host` being the name
    /// the certificate must carry for verify-full (and sent as SNI).
    pub(crate) async fn handshake(
        &self,
        tcp: TcpStream,
        h: &HostParams,
        host: &str,
    ) -> Result<Negotiated> {
        let name = server_name(host);
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        match connector.connect(name, tcp).await {
            Ok(stream) => {
                let (_, session) = stream.get_ref();
                if self.negotiation == SslNegotiation::Direct
                    && session.alpn_protocol() != Some(ALPN)
                {
                    // libpq 17 insists: a server that did not take ALPN is no PostgreSQL
                    // server speaking direct TLS.
                    return Ok(Negotiated::Failed(Error::io(
                        format!("{} failed", describe(h)),
                        std::io::Error::other(
                            "direct SSL connection was established without ALPN protocol negotiation extension",
                        ),
                    )));
                }
                let leaf = session
                    .peer_certificates()
                    .and_then(|certs| certs.first())
                    .map(|c| c.as_ref());
                let binding = TlsBinding::from_server_certificate(leaf);
                Ok(Negotiated::Tls(Box::new(stream), binding))
            }
            Err(e) => Ok(Negotiated::Failed(Error::io(
                format!("{} failed: SSL handshake failed", describe(h)),
                e,
            ))),
        }
    }
}

/// Sends the SSLRequest (unless `negotiation` is direct, which starts with the handshake)
/// and reads the server's answer: the stream back when TLS may start, or how it was turned
/// down. The TLS configuration is built only after this, as libpq reads its certificate
/// files only once the server has agreed (a file it could not read is no error until then).
pub(crate) async fn ssl_request(
    mut tcp: TcpStream,
    h: &HostParams,
    negotiation: SslNegotiation,
) -> Result<std::result::Result<TcpStream, Negotiated>> {
    if negotiation == SslNegotiation::Direct {
        return Ok(Ok(tcp));
    }
    let mut request = bytes::BytesMut::with_capacity(8);
    frontend::ssl_request(&mut request);
    let fail = |e| Error::io(format!("{} failed", describe(h)), e);
    tcp.write_all(&request).await.map_err(fail)?;
    // Exactly one byte: anything after it belongs to the TLS handshake, so a man in the
    // middle cannot slip plaintext in ahead of it (CVE-2021-23222).
    let mut answer = [0u8; 1];
    tcp.read_exact(&mut answer).await.map_err(fail)?;
    match answer[0] {
        b'S' => Ok(Ok(tcp)),
        b'N' => Ok(Err(Negotiated::Declined(tcp))),
        b'E' => Ok(Err(Negotiated::Refused)),
        other => Err(Error::protocol(format!(
            "received invalid response to SSL negotiation: '{}'",
            other.escape_ascii()
        ))),
    }
}

/// The name rustls checks and sends: an IP address or a DNS name. A host name rustls
/// cannot take (only possible when it is not verified, as verify-full needs a valid one)
/// becomes an unspecified address, for which no SNI is sent and nothing is checked.
fn server_name(host: &str) -> ServerName<'static> {
    ServerName::try_from(host.to_owned()).unwrap_or(ServerName::IpAddress(
        std::net::IpAddr::from([0u8, 0, 0, 0]).into(),
    ))
}

fn load_roots(root: &RootCert) -> Result<RootCertStore> {
    let hint = "Either provide the file, use the system's trusted roots with sslrootcert=system, \
                or change sslmode to disable server certificate verification.";
    let mut store = RootCertStore::empty();
    match root {
        RootCert::File(path) => {
            for cert in load_certs(path, "root certificate")? {
                store.add(cert).map_err(|e| {
                    Error::config(format!(
                        "could not read root certificate file \"{}\": {e}",
                        path.display()
                    ))
                })?;
            }
        }
        RootCert::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(Error::config(
                    "could not load the system's trusted root certificates (sslrootcert=system)",
                ));
            }
        }
        RootCert::Missing(Some(path)) => {
            return Err(Error::config(format!(
                "root certificate file \"{}\" does not exist. {hint}",
                path.display()
            )))
        }
        RootCert::Missing(None) => {
            return Err(Error::config(format!(
                "could not get home directory to locate root certificate file. {hint}"
            )))
        }
    }
    Ok(store)
}

/// Every certificate in a PEM file; at least one.
fn load_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let fail = |why: String| {
        Error::config(format!(
            "could not read {what} file \"{}\": {why}",
            path.display()
        ))
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(pem_error(&e)))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| fail(pem_error(&e)))?;
    if certs.is_empty() {
        return Err(fail("no certificates found".into()));
    }
    Ok(certs)
}

/// A PEM error without any of the file's text (a key file's lines must never be shown).
fn pem_error(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error as E;
    match e {
        E::Io(io) => io.to_string(),
        E::NoItemsFound => "no PEM section found".into(),
        _ => "not a valid PEM file".into(),
    }
}

/// Checks what the sslmode asks for: the chain when `roots` is set, the name too when
/// `check_name`; always the handshake signatures, so that the server proves it holds the
/// certificate's key.
#[derive(Debug)]
struct Verifier {
    roots: Option<Arc<RootCertStore>>,
    check_name: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = ParsedCertificate::try_from(end_entity)?;
            verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.algorithms.all,
            )?;
            if self.check_name {
                verify_server_name(&cert, server_name)?;
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names() {
        assert!(matches!(
            server_name("db.example.com"),
            ServerName::DnsName(_)
        ));
        assert!(matches!(server_name("127.0.0.1"), ServerName::IpAddress(_)));
        assert!(matches!(server_name("::1"), ServerName::IpAddress(_)));
        assert!(matches!(server_name("bad name!"), ServerName::IpAddress(_)));
    }
}
