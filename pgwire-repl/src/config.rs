//! Connection configuration, written the way libpq users write it. Nothing here needs tokio:
//! it builds without the `tokio` feature, for a driver of the sans-IO core other than
//! [`conn`](crate::conn).
//!
//! [`Config`] is what the user said: a `key=value` connection string or a `postgres://` URI
//! ([`Config::parse`]), single keywords from a command line ([`Config::set`]) and the `PG*`
//! environment variables ([`Config::apply_env`], given a lookup function), every field still
//! optional. Parsing does no I/O.
//!
//! [`Config::resolve`] fills in libpq's defaults, splits host lists and looks up the
//! password file, and yields the [`ConnectParams`] the connector uses. That and
//! [`Config::from_env_and`] are where the environment and the file system are read, with
//! the standard library: the process environment, the operating-system user and home
//! directory, the socket directories, the password file and the TLS files.
//!
//! - `conninfo`: `key=value` strings; `uri`: `postgresql://` URIs; `pgpass`: the password
//!   file. Each is a hand-written parser, on purpose: libpq's syntax (quoting, escapes,
//!   percent-decoding, what is an error) and its error messages are the contract, and a
//!   parser generator or a general URL crate would accept or word things differently.
//! - `modes`: the enumerated settings (`sslmode`, `sslnegotiation`, `target_session_attrs`).
//! - `resolve`: the defaults, host lists, the password-file lookup and the TLS files.
//! - `os`: the operating-system user, home directory and socket directory, by libpq's rules.
//!
//! See <https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING>.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::auth::ChannelBindingMode;
use crate::error::{Error, Result};
use conninfo::is_space;

mod conninfo;
mod modes;
mod os;
mod pgpass;
mod resolve;
mod uri;

pub use modes::{SslMode, SslNegotiation, TargetSessionAttrs};
pub use resolve::{ConnectParams, HostParams, RootCert, TlsParams};

// The TLS layer checks who owns the client key with it.
#[cfg(feature = "tokio")]
pub(crate) use os::effective_uid;
use os::Os;

/// The port used when none is given.
pub const DEFAULT_PORT: u16 = 5432;

/// Socket directories tried, in order, when no host is given: Debian and Red Hat packages
/// put the socket in the first, a source build in the second.
const DEFAULT_SOCKET_DIRS: [&str; 3] = ["/var/run/postgresql", "/run/postgresql", "/tmp"];

/// The keywords this crate uses.
const KEYWORDS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "user",
    "password",
    "passfile",
    "dbname",
    "application_name",
    "fallback_application_name",
    "options",
    "connect_timeout",
    "sslmode",
    "sslnegotiation",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslsni",
    "channel_binding",
    "target_session_attrs",
    "load_balance_hosts",
];

/// Real libpq keywords this crate accepts and ignores, so that valid libpq strings do not
/// fail. `replication` is among them: the connector decides the kind of connection.
const IGNORED_KEYWORDS: &[&str] = &[
    "service",
    "client_encoding",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "sslcompression",
    "sslcertmode",
    "sslpassword",
    "sslcrl",
    "sslcrldir",
    "sslkeylogfile",
    "requirepeer",
    "require_auth",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "min_protocol_version",
    "max_protocol_version",
    "gssencmode",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
    "replication",
    "scram_client_key",
    "scram_server_key",
    "oauth_issuer",
    "oauth_client_id",
    "oauth_client_secret",
    "oauth_scope",
];

/// The environment variables [`Config::apply_env`] reads, with the keyword each one sets.
const ENV_VARS: &[(&str, &str)] = &[
    ("PGHOST", "host"),
    ("PGHOSTADDR", "hostaddr"),
    ("PGPORT", "port"),
    ("PGUSER", "user"),
    ("PGPASSWORD", "password"),
    ("PGPASSFILE", "passfile"),
    ("PGDATABASE", "dbname"),
    ("PGAPPNAME", "application_name"),
    ("PGOPTIONS", "options"),
    ("PGCONNECT_TIMEOUT", "connect_timeout"),
    ("PGSSLMODE", "sslmode"),
    ("PGSSLNEGOTIATION", "sslnegotiation"),
    ("PGSSLROOTCERT", "sslrootcert"),
    ("PGSSLCERT", "sslcert"),
    ("PGSSLKEY", "sslkey"),
    ("PGSSLSNI", "sslsni"),
    ("PGCHANNELBINDING", "channel_binding"),
    ("PGTARGETSESSIONATTRS", "target_session_attrs"),
    ("PGLOADBALANCEHOSTS", "load_balance_hosts"),
];

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A host name or IP address, reached over TCP.
    Tcp(String),
    /// The directory holding the server's Unix-domain socket; the connector appends
    /// `.s.PGSQL.<port>`.
    Unix(PathBuf),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Tcp(name) => f.write_str(name),
            Host::Unix(dir) => write!(f, "{}", dir.display()),
        }
    }
}

/// What the user said, unresolved: every field optional.
///
/// An empty string is kept as given (as in libpq it counts as "set", so the environment
/// does not override it) and means "the default" when resolved; an empty `port`,
/// `connect_timeout` or mode leaves the field unset.
///
/// `host`, `hostaddr` and `port` are comma-separated lists, as in libpq: `host=a,b
/// port=5432,5433` names two servers, tried in order; one port applies to every host.
#[derive(Clone, Default, PartialEq)]
pub struct Config {
    pub host: Option<String>,
    pub hostaddr: Option<String>,
    /// One port, or one per host; an empty entry means the default.
    pub port: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub dbname: Option<String>,
    pub application_name: Option<String>,
    pub fallback_application_name: Option<String>,
    pub options: Option<String>,
    /// Per host. `Some(Duration::ZERO)` is an explicit "no timeout" (`connect_timeout=0`).
    pub connect_timeout: Option<Duration>,
    pub sslmode: Option<SslMode>,
    pub sslnegotiation: Option<SslNegotiation>,
    /// A PEM file of trusted root certificates, or `system` for the operating system's.
    pub sslrootcert: Option<String>,
    /// The client certificate (PEM).
    pub sslcert: Option<String>,
    /// The client certificate's private key (PEM, unencrypted).
    pub sslkey: Option<String>,
    pub sslsni: Option<bool>,
    pub channel_binding: Option<ChannelBindingMode>,
    pub target_session_attrs: Option<TargetSessionAttrs>,
    pub passfile: Option<PathBuf>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("host", &self.host)
            .field("hostaddr", &self.hostaddr)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("dbname", &self.dbname)
            .field("application_name", &self.application_name)
            .field("fallback_application_name", &self.fallback_application_name)
            .field("options", &self.options)
            .field("connect_timeout", &self.connect_timeout)
            .field("sslmode", &self.sslmode)
            .field("sslnegotiation", &self.sslnegotiation)
            .field("sslrootcert", &self.sslrootcert)
            .field("sslcert", &self.sslcert)
            .field("sslkey", &self.sslkey)
            .field("sslsni", &self.sslsni)
            .field("channel_binding", &self.channel_binding)
            .field("target_session_attrs", &self.target_session_attrs)
            .field("passfile", &self.passfile)
            .finish()
    }
}

impl FromStr for Config {
    type Err = Error;

    fn from_str(s: &str) -> Result<Config> {
        Config::parse(s)
    }
}

/// An optional mode keyword: empty means unset.
fn parse_mode<T: FromStr<Err = Error>>(value: &str) -> Result<Option<T>> {
    if value.is_empty() {
        Ok(None)
    } else {
        value.parse().map(Some)
    }
}

impl Config {
    /// Parses a `key=value` connection string or a `postgres://` / `postgresql://` URI.
    /// The empty string gives a `Config` with nothing set.
    pub fn parse(s: &str) -> Result<Config> {
        match uri::strip_scheme(s) {
            Some(rest) => uri::parse(rest),
            None => conninfo::parse_key_value(s),
        }
    }

    /// Parses the connection string, then fills what it left unset from the process
    /// environment.
    pub fn from_env_and(s: &str) -> Result<Config> {
        let mut config = Config::parse(s)?;
        config.apply_env(|k| std::env::var(k).ok())?;
        Ok(config)
    }

    /// Sets one libpq keyword, validating its value. Keywords libpq knows but this crate
    /// does not use are accepted and ignored.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let text = || Some(value.to_owned());
        match key {
            "host" => self.host = text(),
            "hostaddr" => {
                for addr in value.split(',') {
                    if !addr.is_empty() && addr.parse::<std::net::IpAddr>().is_err() {
                        return Err(Error::config(format!(
                            "could not parse network address \"{addr}\""
                        )));
                    }
                }
                self.hostaddr = text();
            }
            "port" => {
                if value.is_empty() {
                    self.port = None;
                } else {
                    for port in value.split(',') {
                        parse_port(port)?;
                    }
                    self.port = text();
                }
            }
            "user" => self.user = text(),
            "password" => self.password = text(),
            "passfile" => self.passfile = Some(PathBuf::from(value)),
            "dbname" => self.dbname = text(),
            "application_name" => self.application_name = text(),
            "fallback_application_name" => self.fallback_application_name = text(),
            "options" => self.options = text(),
            "connect_timeout" => self.connect_timeout = parse_connect_timeout(value)?,
            "sslmode" => self.sslmode = parse_mode(value)?,
            "sslnegotiation" => self.sslnegotiation = parse_mode(value)?,
            "sslrootcert" => self.sslrootcert = text(),
            "sslcert" => self.sslcert = text(),
            "sslkey" => self.sslkey = text(),
            "sslsni" if value.is_empty() => self.sslsni = None,
            "sslsni" => self.sslsni = Some(modes::parse_sslsni(value)?),
            "channel_binding" => self.channel_binding = parse_mode(value)?,
            "target_session_attrs" => self.target_session_attrs = parse_mode(value)?,
            "load_balance_hosts" => modes::check_load_balance_hosts(value)?,
            _ if is_ignored_keyword(key) => {}
            _ => {
                return Err(Error::config(format!(
                    "invalid connection option \"{key}\""
                )))
            }
        }
        Ok(())
    }

    /// Fills the fields that are still unset from the `PG*` variables (`PGHOST`,
    /// `PGHOSTADDR`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGPASSFILE`, `PGDATABASE`,
    /// `PGAPPNAME`, `PGOPTIONS`, `PGCONNECT_TIMEOUT`, `PGSSLMODE`, `PGSSLNEGOTIATION`,
    /// `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY`, `PGSSLSNI`, `PGCHANNELBINDING`,
    /// `PGTARGETSESSIONATTRS`, `PGLOADBALANCEHOSTS`), looked up through `env`. On error
    /// `self` is left unchanged and the message names the variable.
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<()> {
        let mut next = self.clone();
        for &(var, key) in ENV_VARS {
            if next.is_set(key) {
                continue;
            }
            if let Some(value) = env(var) {
                next.set(key, &value)
                    .map_err(|e| Error::config(format!("environment variable {var}: {e}")))?;
            }
        }
        *self = next;
        Ok(())
    }

    fn is_set(&self, key: &str) -> bool {
        match key {
            "host" => self.host.is_some(),
            "hostaddr" => self.hostaddr.is_some(),
            "port" => self.port.is_some(),
            "user" => self.user.is_some(),
            "password" => self.password.is_some(),
            "passfile" => self.passfile.is_some(),
            "dbname" => self.dbname.is_some(),
            "application_name" => self.application_name.is_some(),
            "options" => self.options.is_some(),
            "connect_timeout" => self.connect_timeout.is_some(),
            "sslmode" => self.sslmode.is_some(),
            "sslnegotiation" => self.sslnegotiation.is_some(),
            "sslrootcert" => self.sslrootcert.is_some(),
            "sslcert" => self.sslcert.is_some(),
            "sslkey" => self.sslkey.is_some(),
            "sslsni" => self.sslsni.is_some(),
            "channel_binding" => self.channel_binding.is_some(),
            "target_session_attrs" => self.target_session_attrs.is_some(),
            _ => false,
        }
    }

    /// Fills in libpq's defaults and looks up the password file for each host (only when
    /// no password was given); `replication` selects the database name `replication` for
    /// the lookup.
    ///
    /// Defaults: the first existing of `/var/run/postgresql`, `/run/postgresql` and `/tmp`
    /// as the socket directory, port 5432, the operating-system user (the effective uid's
    /// account by `getpwuid_r`, else `$USER`), a database named like the user,
    /// `sslmode=prefer`, and `~/.postgresql/root.crt`, `postgresql.crt` and
    /// `postgresql.key` when they exist and no file is named. `~` is `$HOME`, else the
    /// account's home directory, as in libpq 15 and later.
    pub fn resolve(&self, replication: bool) -> Result<ConnectParams> {
        self.resolve_in(replication, &Os::probe())
    }
}

fn is_known_keyword(key: &str) -> bool {
    KEYWORDS.contains(&key) || is_ignored_keyword(key)
}

fn is_ignored_keyword(key: &str) -> bool {
    IGNORED_KEYWORDS.contains(&key)
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

/// libpq's `parse_int_param`: surrounding whitespace and a sign are allowed, the value must
/// fit an `int`.
fn parse_int(value: &str) -> Option<i32> {
    value.trim_matches(is_space).parse().ok()
}

/// One entry of a port list; empty means the default.
fn parse_port(value: &str) -> Result<Option<u16>> {
    if value.is_empty() {
        return Ok(None);
    }
    match parse_int(value).map(u16::try_from) {
        Some(Ok(port)) if port != 0 => Ok(Some(port)),
        _ => Err(Error::config(format!("invalid port number: \"{value}\""))),
    }
}

/// Whole seconds; zero or negative means no timeout, and one second becomes two (libpq's
/// minimum, so that rounding cannot make the wait almost nothing).
fn parse_connect_timeout(value: &str) -> Result<Option<Duration>> {
    if value.is_empty() {
        return Ok(None);
    }
    let secs = parse_int(value).ok_or_else(|| {
        Error::config(format!(
            "invalid integer value \"{value}\" for connection option \"connect_timeout\""
        ))
    })?;
    Ok(Some(Duration::from_secs(match secs {
        ..=0 => 0,
        1 => 2,
        n => u64::from(n.unsigned_abs()),
    })))
}

/// The names a password-file line's host field may carry for `host`. libpq compares a
/// socket directory as given, except that the default directory compares as `localhost`;
/// with several default directories here, each of them matches `localhost` as well as its
/// own path.
fn passfile_host_names(host: &Host) -> Vec<String> {
    match host {
        Host::Tcp(name) => vec![name.clone()],
        Host::Unix(dir) => {
            let literal = dir.to_string_lossy().into_owned();
            let trimmed = match literal.trim_end_matches('/') {
                "" => "/",
                t => t,
            };
            let mut names = vec![literal.clone()];
            if DEFAULT_SOCKET_DIRS.contains(&trimmed) {
                names.push("localhost".to_owned());
            }
            names
        }
    }
}

#[cfg(test)]
mod tests;
