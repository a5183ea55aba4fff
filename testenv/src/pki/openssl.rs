//! Certificates made by the `openssl` command line, the way people make them by hand.
//!
//! rcgen (the rest of [`crate::pki`]) only makes X.509 version 3 certificates. The usual
//! recipe for a client certificate (`openssl req -newkey …`, then `openssl x509 -req`
//! without an extension file) makes version 1 ones, which libpq and the server take, and
//! which a client library must take too. Each certificate's version is checked with
//! `openssl x509 -noout -text` after it is made, so that a test meant for version 1 cannot
//! pass with version 3. A missing `openssl` program is an error, not a skip.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::CERT_USER;
use crate::error::{Error, IoContext, Result};
use crate::process::run;
use crate::Cluster;

/// A private key type and PEM encoding, as `openssl` writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    /// RSA 2048 bits, PKCS#8 (`BEGIN PRIVATE KEY`).
    Rsa,
    /// RSA 2048 bits, PKCS#1 (`BEGIN RSA PRIVATE KEY`).
    RsaPkcs1,
    /// ECDSA P-256, SEC1 (`BEGIN EC PRIVATE KEY`).
    EcP256Sec1,
    /// ECDSA P-384, PKCS#8.
    EcP384,
    /// Ed25519, PKCS#8.
    Ed25519,
    /// Ed448, PKCS#8: libpq takes it, rustls' ring provider cannot sign with it.
    Ed448,
}

impl KeyType {
    /// The PEM label of the key file.
    fn pem_label(self) -> &'static str {
        match self {
            KeyType::RsaPkcs1 => "RSA PRIVATE KEY",
            KeyType::EcP256Sec1 => "EC PRIVATE KEY",
            _ => "PRIVATE KEY",
        }
    }

    /// `openssl req -newkey` arguments, and whether `openssl pkey -traditional` must turn
    /// the PKCS#8 key it writes into the older encoding.
    fn newkey(self) -> (&'static [&'static str], bool) {
        match self {
            KeyType::Rsa => (&["-newkey", "rsa:2048"], false),
            KeyType::RsaPkcs1 => (&["-newkey", "rsa:2048"], true),
            KeyType::EcP256Sec1 => (
                &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
                true,
            ),
            KeyType::EcP384 => (
                &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
                false,
            ),
            KeyType::Ed25519 => (&["-newkey", "ed25519"], false),
            KeyType::Ed448 => (&["-newkey", "ed448"], false),
        }
    }
}

/// A certificate the CA signed, and its key (mode 0600).
#[derive(Debug)]
pub struct Issued {
    /// 1 or 3, as checked by `openssl x509 -text`.
    pub version: u32,
    pub key_type: KeyType,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A CA made by `openssl req -x509`, and the files it signs, in one directory.
#[derive(Debug)]
pub struct OpensslCa {
    dir: PathBuf,
    /// The CA's certificate (PEM); its key is `ca.key` beside it.
    pub cert: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) -> Result<()> {
    run(Command::new("openssl").current_dir(dir).args(args), None).map(|_| ())
}

impl OpensslCa {
    /// A new CA named `cn`, its files in `dir` (created if needed).
    pub fn new(dir: &Path, cn: &str) -> Result<OpensslCa> {
        std::fs::create_dir_all(dir).context(|| format!("cannot create {}", dir.display()))?;
        let ca = OpensslCa {
            dir: dir.to_owned(),
            cert: dir.join("ca.crt"),
        };
        let subj = format!("/CN={cn}");
        openssl(
            dir,
            &[
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-subj",
                &subj, "-days", "30", "-out", "ca.crt",
            ],
        )?;
        Ok(ca)
    }

    /// Signs a new key's request for `cn` into `<name>.crt` and `<name>.key`. With `ext`
    /// (the lines of an extension file) the certificate is version 3; without, version 1.
    fn sign(&self, name: &str, cn: &str, key_type: KeyType, ext: Option<&str>) -> Result<Issued> {
        let (crt, key, csr) = (
            format!("{name}.crt"),
            format!("{name}.key"),
            format!("{name}.csr"),
        );
        let subj = format!("/CN={cn}");
        let (newkey, traditional) = key_type.newkey();
        let mut req = vec!["req"];
        req.extend_from_slice(newkey);
        req.extend_from_slice(&["-nodes", "-keyout", &key, "-subj", &subj, "-out", &csr]);
        openssl(&self.dir, &req)?;
        let key_path = self.dir.join(&key);
        if traditional {
            // Not in place: openssl would empty the file before reading it.
            let pkcs8 = format!("{name}.pkcs8.key");
            let pkcs8_path = self.dir.join(&pkcs8);
            std::fs::rename(&key_path, &pkcs8_path)
                .context(|| format!("cannot rename {}", key_path.display()))?;
            openssl(
                &self.dir,
                &["pkey", "-in", &pkcs8, "-traditional", "-out", &key],
            )?;
        }
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600))
            .context(|| format!("cannot chmod {}", key_path.display()))?;
        let pem = std::fs::read_to_string(&key_path)
            .context(|| format!("cannot read {}", key_path.display()))?;
        let begin = format!("-----BEGIN {}-----", key_type.pem_label());
        if pem.lines().next() != Some(begin.as_str()) {
            return Err(Error::new(format!(
                "{} does not start with {begin}",
                key_path.display()
            )));
        }
        let mut x509 = vec![
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-out",
            &crt,
        ];
        let ext_file = format!("{name}.ext");
        if let Some(lines) = ext {
            let path = self.dir.join(&ext_file);
            std::fs::write(&path, lines).context(|| format!("cannot write {}", path.display()))?;
            x509.extend_from_slice(&["-extfile", &ext_file]);
        }
        openssl(&self.dir, &x509)?;
        let cert = self.dir.join(&crt);
        let version = cert_version(&cert)?;
        let want = if ext.is_some() { 3 } else { 1 };
        if version != want {
            return Err(Error::new(format!(
                "openssl made a version {version} certificate in {}, not version {want}",
                cert.display()
            )));
        }
        Ok(Issued {
            version,
            key_type,
            cert,
            key: key_path,
        })
    }

    /// A client certificate for `cn` by the usual recipe: version 1, no extensions.
    pub fn client_v1(&self, name: &str, cn: &str, key_type: KeyType) -> Result<Issued> {
        self.sign(name, cn, key_type, None)
    }

    /// A client certificate for `cn`, version 3 (`basicConstraints=CA:FALSE`,
    /// `extendedKeyUsage=clientAuth`).
    pub fn client_v3(&self, name: &str, cn: &str, key_type: KeyType) -> Result<Issued> {
        let ext = "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n\
                   extendedKeyUsage=clientAuth\n";
        self.sign(name, cn, key_type, Some(ext))
    }

    /// A server certificate (version 3) for `localhost` and `127.0.0.1`.
    pub fn server(&self, name: &str) -> Result<Issued> {
        let ext = "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n\
                   extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n";
        self.sign(name, "localhost", KeyType::Rsa, Some(ext))
    }
}

/// The X.509 version of the certificate in `path`, as `openssl x509 -noout -text` says
/// (`Version: 1 (0x0)`).
pub fn cert_version(path: &Path) -> Result<u32> {
    let out = run(
        Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in"])
            .arg(path),
        None,
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Version: "))
        .and_then(|v| v.split(' ').next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Error::new(format!("no version in the text of {}", path.display())))
}

/// Files of a PKI made with `openssl`: the CA, and client certificates for [`CERT_USER`]
/// of both versions and with every [`KeyType`] a client is expected to take (not Ed448).
#[derive(Debug)]
pub struct OpensslPki {
    /// The CA that signed the server's and the clients' certificates.
    pub ca: PathBuf,
    /// Version 1, RSA (PKCS#8), exactly by the usual recipe.
    pub v1: Issued,
    /// Version 3, RSA (PKCS#8).
    pub v3: Issued,
    /// Version 1 certificates with the other key types and encodings.
    pub other_keys: Vec<Issued>,
    /// The PEM text of every private key, to check they never leak.
    pub key_pems: Vec<String>,
}

/// Like [`super::enable_test_pki`], with certificates made by the `openssl` command line:
/// turns TLS on in `pg` with a version 3 server certificate (for `localhost` and
/// `127.0.0.1`) and adds the role [`CERT_USER`] (`hostssl … cert`). Restarts the server.
pub fn enable_openssl_pki(pg: &Cluster) -> Result<OpensslPki> {
    let ca = OpensslCa::new(&pg.temp_dir().join("openssl-pki"), "openssl CA")?;
    let server = ca.server("server")?;
    let v1 = ca.client_v1("client-v1", CERT_USER, KeyType::Rsa)?;
    let v3 = ca.client_v3("client-v3", CERT_USER, KeyType::Rsa)?;
    let mut other_keys = Vec::new();
    for (name, key_type) in [
        ("client-rsa-pkcs1", KeyType::RsaPkcs1),
        ("client-p256-sec1", KeyType::EcP256Sec1),
        ("client-p384", KeyType::EcP384),
        ("client-ed25519", KeyType::Ed25519),
    ] {
        other_keys.push(ca.client_v1(name, CERT_USER, key_type)?);
    }
    let read =
        |p: &Path| std::fs::read_to_string(p).context(|| format!("cannot read {}", p.display()));
    let mut key_pems = vec![read(&server.key)?];
    for c in [&v1, &v3].into_iter().chain(&other_keys) {
        key_pems.push(read(&c.key)?);
    }
    super::allow_cert_login(pg)?;
    pg.enable_ssl(&read(&server.cert)?, &key_pems[0], Some(&read(&ca.cert)?))?;
    Ok(OpensslPki {
        ca: ca.cert,
        v1,
        v3,
        other_keys,
        key_pems,
    })
}
