//! [`Config::resolve`]: libpq's defaults, host lists, the password file and the TLS files.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::pgpass;
use super::{
    non_empty, parse_port, passfile_host_names, Config, Host, Os, SslMode, SslNegotiation,
    TargetSessionAttrs, DEFAULT_PORT,
};
use crate::auth::ChannelBindingMode;
use crate::error::{Error, Result};

/// What the connector uses: a [`Config`] with every default filled in.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectParams {
    /// The servers to try, in order; never empty.
    pub hosts: Vec<HostParams>,
    pub user: String,
    pub dbname: String,
    /// `application_name`, else `fallback_application_name`.
    pub application_name: Option<String>,
    pub options: Option<String>,
    /// The limit for each host's attempt (libpq 14 and later), not for the whole list.
    pub connect_timeout: Option<Duration>,
    pub sslmode: SslMode,
    pub tls: TlsParams,
    pub channel_binding: ChannelBindingMode,
    pub target_session_attrs: TargetSessionAttrs,
    /// Problems worth telling the user about (an insecure password file, say). Nothing
    /// prints them: they are the application's to report, before connecting or from
    /// [`Client::warnings`](crate::Client::warnings) after.
    pub warnings: Vec<String>,
}

/// One server of the list.
#[derive(Clone, PartialEq, Eq)]
pub struct HostParams {
    pub host: Host,
    /// A numeric address to connect to instead of looking `host` up.
    pub hostaddr: Option<String>,
    pub port: u16,
    /// The given password, else the password file's entry for this host.
    pub password: Option<String>,
}

/// Where trusted root certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// A PEM file that exists.
    File(PathBuf),
    /// The file named (or `~/.postgresql/root.crt`) does not exist; `None` when there is
    /// no home directory to look in. The server's certificate cannot be verified.
    Missing(Option<PathBuf>),
    /// `sslrootcert=system`: the operating system's trusted roots.
    System,
}

/// The TLS settings, files resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsParams {
    pub negotiation: SslNegotiation,
    pub root_cert: RootCert,
    /// The client certificate, unless its path leads nowhere (as in libpq, a missing file
    /// means no client certificate; a directory or an unreadable file is an error when TLS
    /// starts).
    pub client_cert: Option<PathBuf>,
    /// The key for `client_cert`; it must exist when the certificate does.
    pub client_key: Option<PathBuf>,
    /// Send the host name (SNI) in the handshake; never for an IP address.
    pub sni: bool,
}

impl TlsParams {
    /// Whether the server's certificate chain is checked: always for verify-ca and
    /// verify-full, and, as in libpq, for any mode that uses TLS when a root certificate
    /// file exists.
    pub fn verifies_chain(&self, mode: SslMode) -> bool {
        matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull)
            || matches!(self.root_cert, RootCert::File(_) | RootCert::System)
    }
}

impl fmt::Debug for HostParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostParams")
            .field("host", &self.host)
            .field("hostaddr", &self.hostaddr)
            .field("port", &self.port)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

impl fmt::Debug for ConnectParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectParams")
            .field("hosts", &self.hosts)
            .field("user", &self.user)
            .field("dbname", &self.dbname)
            .field("application_name", &self.application_name)
            .field("options", &self.options)
            .field("connect_timeout", &self.connect_timeout)
            .field("sslmode", &self.sslmode)
            .field("tls", &self.tls)
            .field("channel_binding", &self.channel_binding)
            .field("target_session_attrs", &self.target_session_attrs)
            .field("warnings", &self.warnings)
            .finish()
    }
}

/// Splits a comma-separated list; unset or empty is no entries.
fn list(value: &Option<String>) -> Vec<&str> {
    match non_empty(value) {
        Some(v) => v.split(',').collect(),
        None => Vec::new(),
    }
}

impl Config {
    pub(super) fn resolve_in(&self, replication: bool, os: &Os) -> Result<ConnectParams> {
        let names = list(&self.host);
        let addrs = list(&self.hostaddr);
        if !names.is_empty() && !addrs.is_empty() && names.len() != addrs.len() {
            return Err(Error::config(format!(
                "could not match {} host names to {} hostaddr values",
                names.len(),
                addrs.len()
            )));
        }
        let count = names.len().max(addrs.len()).max(1);
        let ports = match non_empty(&self.port) {
            Some(p) => p
                .split(',')
                .map(|p| Ok(parse_port(p)?.unwrap_or(DEFAULT_PORT)))
                .collect::<Result<Vec<u16>>>()?,
            None => vec![DEFAULT_PORT],
        };
        if ports.len() != 1 && ports.len() != count {
            return Err(Error::config(format!(
                "could not match {} port numbers to {} hosts",
                ports.len(),
                count
            )));
        }

        let user = match non_empty(&self.user) {
            Some(user) => user.to_owned(),
            None => os.user.clone().ok_or_else(|| {
                Error::config("could not determine the local user name; set \"user\" or PGUSER")
            })?,
        };
        let dbname = non_empty(&self.dbname).unwrap_or(&user).to_owned();

        let mut warnings = Vec::new();
        let mut hosts = Vec::with_capacity(count);
        for i in 0..count {
            let name = names.get(i).copied().filter(|n| !n.is_empty());
            let hostaddr = addrs
                .get(i)
                .copied()
                .filter(|a| !a.is_empty())
                .map(str::to_owned);
            // As in libpq, a hostaddr without a host name stands in for the name (in the
            // password-file lookup and certificate checks too).
            let host = match (name, &hostaddr) {
                (Some(h), _) if h.starts_with('/') => Host::Unix(PathBuf::from(h)),
                (Some(h), _) => Host::Tcp(h.to_owned()),
                (None, Some(addr)) => Host::Tcp(addr.clone()),
                (None, None) => Host::Unix(os.socket_dir.clone()),
            };
            let port = ports
                .get(i)
                .or(ports.first())
                .copied()
                .unwrap_or(DEFAULT_PORT);
            let password =
                self.password_for(&host, port, &user, &dbname, replication, os, &mut warnings);
            hosts.push(HostParams {
                host,
                hostaddr,
                port,
                password,
            });
        }
        warnings.dedup();

        let (sslmode, tls) = self.resolve_tls(os)?;
        Ok(ConnectParams {
            hosts,
            user,
            dbname,
            application_name: non_empty(&self.application_name)
                .or(non_empty(&self.fallback_application_name))
                .map(str::to_owned),
            options: non_empty(&self.options).map(str::to_owned),
            connect_timeout: self.connect_timeout.filter(|t| !t.is_zero()),
            sslmode,
            tls,
            channel_binding: self.channel_binding.unwrap_or_default(),
            target_session_attrs: self.target_session_attrs.unwrap_or_default(),
            warnings,
        })
    }

    /// The given password, else the password file's entry for this host.
    #[allow(clippy::too_many_arguments)]
    fn password_for(
        &self,
        host: &Host,
        port: u16,
        user: &str,
        dbname: &str,
        replication: bool,
        os: &Os,
        warnings: &mut Vec<String>,
    ) -> Option<String> {
        if let Some(password) = non_empty(&self.password) {
            return Some(password.to_owned());
        }
        let file = match self.passfile.as_deref() {
            Some(p) if !p.as_os_str().is_empty() => Some(p.to_path_buf()),
            _ => os.home.as_ref().map(|home| home.join(".pgpass")),
        }?;
        let hosts = passfile_host_names(host);
        let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
        let key = pgpass::Key {
            hosts: &hosts,
            port,
            dbname: if replication { "replication" } else { dbname },
            user,
        };
        pgpass::lookup(&file, &key, warnings)
    }

    /// The effective sslmode and the TLS files, with libpq's checks of combinations.
    fn resolve_tls(&self, os: &Os) -> Result<(SslMode, TlsParams)> {
        let rootcert = non_empty(&self.sslrootcert);
        let system = rootcert == Some("system");
        // libpq 16: sslrootcert=system makes verify-full the default, and refuses weaker.
        let sslmode = match self.sslmode {
            Some(mode) => mode,
            None if system => SslMode::VerifyFull,
            None => SslMode::default(),
        };
        if system && sslmode != SslMode::VerifyFull {
            return Err(Error::config(format!(
                "weak sslmode \"{sslmode}\" may not be used with sslrootcert=system (use \"verify-full\")"
            )));
        }
        let negotiation = self.sslnegotiation.unwrap_or_default();
        if negotiation == SslNegotiation::Direct && !sslmode.requires_tls() {
            return Err(Error::config(format!(
                "weak sslmode \"{sslmode}\" may not be used with sslnegotiation=direct (use \"require\", \"verify-ca\", or \"verify-full\")"
            )));
        }
        let dot_postgresql = |file: &str| {
            os.home
                .as_ref()
                .map(|home| home.join(".postgresql").join(file))
        };
        let root_cert = match rootcert {
            _ if system => RootCert::System,
            Some(path) => existing(PathBuf::from(path)),
            None => match dot_postgresql("root.crt") {
                Some(path) => existing(path),
                None => RootCert::Missing(None),
            },
        };
        let client_cert = match non_empty(&self.sslcert) {
            Some(path) => Some(PathBuf::from(path)),
            None => dot_postgresql("postgresql.crt"),
        }
        .filter(|p| !absent(p));
        let client_key = match non_empty(&self.sslkey) {
            Some(path) => Some(PathBuf::from(path)),
            None => dot_postgresql("postgresql.key"),
        }
        .filter(|_| client_cert.is_some());
        let tls = TlsParams {
            negotiation,
            root_cert,
            client_cert,
            client_key,
            sni: self.sslsni.unwrap_or(true),
        };
        Ok((sslmode, tls))
    }
}

/// libpq's test for "no client certificate": `stat` fails with ENOENT or ENOTDIR.
fn absent(path: &Path) -> bool {
    use std::io::ErrorKind;
    matches!(
        std::fs::metadata(path),
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory)
    )
}

fn existing(path: PathBuf) -> RootCert {
    if Path::new(&path).exists() {
        RootCert::File(path)
    } else {
        RootCert::Missing(Some(path))
    }
}
