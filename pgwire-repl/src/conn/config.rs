//! Connection configuration, written the way libpq users write it.
//!
//! [`Config`] is what the user said: a `key=value` connection string or a `postgres://` URI
//! ([`Config::parse`]), single keywords from a command line ([`Config::set`]) and the `PG*`
//! environment variables ([`Config::apply_env`]), every field still optional.
//! [`Config::resolve`] fills in libpq's defaults and the password file and yields the
//! [`ConnectParams`] the connector uses.
//!
//! See <https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING>.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use super::{pgpass, uri};
use crate::error::{Error, Result};

/// The port used when none is given.
pub const DEFAULT_PORT: u16 = 5432;

/// Socket directories tried, in order, when no host is given: Debian and Red Hat packages
/// put the socket in the first, a source build in the second.
const DEFAULT_SOCKET_DIRS: [&str; 3] = ["/var/run/postgresql", "/run/postgresql", "/tmp"];

/// Real libpq keywords this crate accepts and ignores, so that valid libpq strings do not
/// fail. `replication` is among them: the connector decides the kind of connection.
const IGNORED_KEYWORDS: &[&str] = &[
    "service",
    "channel_binding",
    "client_encoding",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "sslnegotiation",
    "sslcompression",
    "sslcert",
    "sslkey",
    "sslcertmode",
    "sslpassword",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslsni",
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
    "target_session_attrs",
    "load_balance_hosts",
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

/// libpq's `sslmode`. Only the modes that may connect without TLS are usable for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SslMode {
    Disable,
    Allow,
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    /// libpq's name for the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    fn requires_tls(self) -> bool {
        matches!(
            self,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
        )
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SslMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<SslMode> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return Err(Error::config(format!("invalid sslmode value: \"{s}\""))),
        })
    }
}

/// What the user said, unresolved: every field optional.
///
/// An empty string is kept as given (as in libpq it counts as "set", so the environment
/// does not override it) and means "the default" when resolved; an empty `port`,
/// `connect_timeout` or `sslmode` leaves the field unset.
#[derive(Clone, Default, PartialEq)]
pub struct Config {
    pub host: Option<String>,
    pub hostaddr: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub dbname: Option<String>,
    pub application_name: Option<String>,
    pub fallback_application_name: Option<String>,
    pub options: Option<String>,
    /// `Some(Duration::ZERO)` is an explicit "no timeout" (`connect_timeout=0`).
    pub connect_timeout: Option<Duration>,
    pub sslmode: Option<SslMode>,
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

impl Config {
    /// Parses a `key=value` connection string or a `postgres://` / `postgresql://` URI.
    /// The empty string gives a `Config` with nothing set.
    pub fn parse(s: &str) -> Result<Config> {
        match uri::strip_scheme(s) {
            Some(rest) => uri::parse(rest),
            None => parse_key_value(s),
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
            "host" => {
                single_host(value)?;
                self.host = text();
            }
            "hostaddr" => {
                single_host(value)?;
                if !value.is_empty() && value.parse::<std::net::IpAddr>().is_err() {
                    return Err(Error::config(format!(
                        "could not parse network address \"{value}\""
                    )));
                }
                self.hostaddr = text();
            }
            "port" => self.port = parse_port(value)?,
            "user" => self.user = text(),
            "password" => self.password = text(),
            "passfile" => self.passfile = Some(PathBuf::from(value)),
            "dbname" => self.dbname = text(),
            "application_name" => self.application_name = text(),
            "fallback_application_name" => self.fallback_application_name = text(),
            "options" => self.options = text(),
            "connect_timeout" => self.connect_timeout = parse_connect_timeout(value)?,
            "sslmode" if value.is_empty() => self.sslmode = None,
            "sslmode" => self.sslmode = Some(value.parse()?),
            _ if is_ignored_keyword(key) => {}
            _ => {
                return Err(Error::config(format!(
                    "invalid connection option \"{key}\""
                )))
            }
        }
        Ok(())
    }

    /// Fills the fields that are still unset from `PGHOST`, `PGHOSTADDR`, `PGPORT`, `PGUSER`,
    /// `PGPASSWORD`, `PGPASSFILE`, `PGDATABASE`, `PGAPPNAME`, `PGOPTIONS`,
    /// `PGCONNECT_TIMEOUT` and `PGSSLMODE`, looked up through `env`. On error `self` is
    /// left unchanged and the message names the variable.
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
            _ => false,
        }
    }

    /// Fills in libpq's defaults and looks up the password file (only when no password
    /// was given); `replication` selects the database name `replication` for the lookup.
    ///
    /// Defaults: the first existing of `/var/run/postgresql`, `/run/postgresql` and `/tmp`
    /// as the socket directory, port 5432, the operating-system user, a database named
    /// like the user. Fails for the sslmodes that require TLS, which is not supported yet.
    pub fn resolve(&self, replication: bool) -> Result<ConnectParams> {
        self.resolve_in(replication, &Os::probe())
    }

    fn resolve_in(&self, replication: bool, os: &Os) -> Result<ConnectParams> {
        let sslmode = self.sslmode.unwrap_or_default();
        if sslmode.requires_tls() {
            return Err(Error::config(format!(
                "TLS is not supported yet (sslmode={sslmode})"
            )));
        }
        let hostaddr = non_empty(&self.hostaddr).map(str::to_owned);
        // As in libpq, a hostaddr without a host name stands in for the name (in the
        // password-file lookup too).
        let host = match (non_empty(&self.host), &hostaddr) {
            (Some(h), _) if h.starts_with('/') => Host::Unix(PathBuf::from(h)),
            (Some(h), _) => Host::Tcp(h.to_owned()),
            (None, Some(addr)) => Host::Tcp(addr.clone()),
            (None, None) => Host::Unix(os.socket_dir.clone()),
        };
        let port = self.port.unwrap_or(DEFAULT_PORT);
        let user = match non_empty(&self.user) {
            Some(user) => user.to_owned(),
            None => os.user.clone().ok_or_else(|| {
                Error::config("could not determine the local user name; set \"user\" or PGUSER")
            })?,
        };
        let dbname = non_empty(&self.dbname).unwrap_or(&user).to_owned();

        let mut warnings = Vec::new();
        let password = match non_empty(&self.password) {
            Some(password) => Some(password.to_owned()),
            None => {
                let file = match self.passfile.as_deref() {
                    Some(p) if !p.as_os_str().is_empty() => Some(p.to_path_buf()),
                    _ => os.home.as_ref().map(|home| home.join(".pgpass")),
                };
                file.and_then(|file| {
                    let hosts = passfile_host_names(&host);
                    let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
                    let key = pgpass::Key {
                        hosts: &hosts,
                        port,
                        dbname: if replication { "replication" } else { &dbname },
                        user: &user,
                    };
                    pgpass::lookup(&file, &key, &mut warnings)
                })
            }
        };

        Ok(ConnectParams {
            host,
            hostaddr,
            port,
            user,
            password,
            dbname,
            application_name: non_empty(&self.application_name)
                .or(non_empty(&self.fallback_application_name))
                .map(str::to_owned),
            options: non_empty(&self.options).map(str::to_owned),
            connect_timeout: self.connect_timeout.filter(|t| !t.is_zero()),
            sslmode,
            warnings,
        })
    }
}

/// What the connector uses: a [`Config`] with every default filled in.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectParams {
    pub host: Host,
    /// A numeric address to connect to instead of looking `host` up.
    pub hostaddr: Option<String>,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub dbname: String,
    /// `application_name`, else `fallback_application_name`.
    pub application_name: Option<String>,
    pub options: Option<String>,
    pub connect_timeout: Option<Duration>,
    pub sslmode: SslMode,
    /// Problems worth telling the user about (an insecure password file, say); the
    /// connector prints them.
    pub warnings: Vec<String>,
}

impl fmt::Debug for ConnectParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectParams")
            .field("host", &self.host)
            .field("hostaddr", &self.hostaddr)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("dbname", &self.dbname)
            .field("application_name", &self.application_name)
            .field("options", &self.options)
            .field("connect_timeout", &self.connect_timeout)
            .field("sslmode", &self.sslmode)
            .field("warnings", &self.warnings)
            .finish()
    }
}

pub(super) fn is_known_keyword(key: &str) -> bool {
    ENV_VARS.iter().any(|&(_, k)| k == key)
        || key == "fallback_application_name"
        || is_ignored_keyword(key)
}

fn is_ignored_keyword(key: &str) -> bool {
    IGNORED_KEYWORDS.contains(&key)
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

fn single_host(value: &str) -> Result<()> {
    if value.contains(',') {
        return Err(Error::config("multiple hosts are not supported yet"));
    }
    Ok(())
}

/// libpq's `parse_int_param`: surrounding whitespace and a sign are allowed, the value must
/// fit an `int`.
fn parse_int(value: &str) -> Option<i32> {
    value.trim_matches(is_space).parse().ok()
}

fn parse_port(value: &str) -> Result<Option<u16>> {
    if value.is_empty() {
        return Ok(None);
    }
    single_host(value)?;
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

/// C's `isspace` in the C locale (Rust's ASCII whitespace lacks the vertical tab).
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r')
}

/// libpq's `conninfo_parse`: `key = value` pairs separated by whitespace; a value is either
/// single-quoted or ends at whitespace, and a backslash takes the next character literally
/// in both forms.
fn parse_key_value(s: &str) -> Result<Config> {
    let mut config = Config::default();
    let mut chars = s.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if is_space(c) {
            chars.next();
            continue;
        }
        let mut end = s.len();
        while let Some(&(i, c)) = chars.peek() {
            if c == '=' || is_space(c) {
                end = i;
                break;
            }
            chars.next();
        }
        let key = &s[start..end];
        while chars.next_if(|&(_, c)| is_space(c)).is_some() {}
        if chars.next_if(|&(_, c)| c == '=').is_none() {
            return Err(Error::config(format!(
                "missing \"=\" after \"{key}\" in connection info string"
            )));
        }
        while chars.next_if(|&(_, c)| is_space(c)).is_some() {}

        let mut value = String::new();
        if chars.next_if(|&(_, c)| c == '\'').is_some() {
            loop {
                match chars.next() {
                    None => {
                        return Err(Error::config(
                            "unterminated quoted string in connection info string",
                        ))
                    }
                    Some((_, '\'')) => break,
                    Some((_, '\\')) => value.extend(chars.next().map(|(_, c)| c)),
                    Some((_, c)) => value.push(c),
                }
            }
        } else {
            while let Some((_, c)) = chars.next() {
                match c {
                    c if is_space(c) => break,
                    '\\' => value.extend(chars.next().map(|(_, c)| c)),
                    c => value.push(c),
                }
            }
        }
        config.set(key, &value)?;
    }
    Ok(config)
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

/// What the operating system supplies to [`Config::resolve`]; tests build their own.
struct Os {
    user: Option<String>,
    home: Option<PathBuf>,
    socket_dir: PathBuf,
}

impl Os {
    fn probe() -> Os {
        let entry = effective_uid().and_then(|uid| {
            let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
            passwd_entry(&passwd, uid)
        });
        let env_nonempty = |var| std::env::var_os(var).filter(|v| !v.is_empty());
        let user = entry
            .as_ref()
            .map(|(name, _)| name.clone())
            .or_else(|| env_nonempty("USER").and_then(|u| u.into_string().ok()));
        // libpq also prefers $HOME to the passwd entry.
        let home = env_nonempty("HOME")
            .map(PathBuf::from)
            .or(entry.map(|(_, home)| home));
        let socket_dir = DEFAULT_SOCKET_DIRS
            .iter()
            .map(Path::new)
            .find(|dir| dir.is_dir())
            .unwrap_or(Path::new("/tmp"))
            .to_path_buf();
        Os {
            user,
            home,
            socket_dir,
        }
    }
}

/// The effective uid without `geteuid`: `/proc/self` belongs to it.
fn effective_uid() -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").ok().map(|m| m.uid())
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The name and home directory of `uid` in `/etc/passwd` text.
fn passwd_entry(passwd: &str, uid: u32) -> Option<(String, PathBuf)> {
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        match fields[..] {
            [name, _, id, _, _, home, ..] if !name.is_empty() && id.parse() == Ok(uid) => {
                Some((name.to_owned(), PathBuf::from(home)))
            }
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        Config::parse(s).unwrap_err().to_string()
    }

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    fn os(home: Option<&Path>) -> Os {
        Os {
            user: Some("alice".into()),
            home: home.map(Path::to_path_buf),
            socket_dir: PathBuf::from("/var/run/postgresql"),
        }
    }

    #[test]
    fn empty_strings_set_nothing() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
        assert_eq!(
            Config::parse(" \t\n\r\u{b}\u{c}").unwrap(),
            Config::default()
        );
        assert_eq!("".parse::<Config>().unwrap(), Config::default());
    }

    #[test]
    fn key_value_pairs() {
        let c: Config = "host=db1 port = 5433  user= alice dbname =postgres \
                         application_name=recv fallback_application_name=fb options=-cx=1 \
                         passfile=/p hostaddr=127.0.0.1 connect_timeout=10 sslmode=allow"
            .parse()
            .unwrap();
        let want = Config {
            host: Some("db1".into()),
            hostaddr: Some("127.0.0.1".into()),
            port: Some(5433),
            user: Some("alice".into()),
            password: None,
            dbname: Some("postgres".into()),
            application_name: Some("recv".into()),
            fallback_application_name: Some("fb".into()),
            options: Some("-cx=1".into()),
            connect_timeout: Some(Duration::from_secs(10)),
            sslmode: Some(SslMode::Allow),
            passfile: Some("/p".into()),
        };
        assert_eq!(c, want);
        // Later keywords win.
        assert_eq!(Config::parse("port=1 port=2").unwrap().port, Some(2));
    }

    #[test]
    fn quoting_and_escapes() {
        let c =
            Config::parse(r"password='a b\'c\\d' application_name='' options=-c\ x=y\\").unwrap();
        assert_eq!(c.password.as_deref(), Some(r"a b'c\d"));
        assert_eq!(c.application_name.as_deref(), Some(""));
        assert_eq!(c.options.as_deref(), Some(r"-c x=y\"));
        // A quoted value ends at its quote, even with no space after it (as in libpq).
        let c = Config::parse("user='a'dbname=b").unwrap();
        assert_eq!(
            (c.user.as_deref(), c.dbname.as_deref()),
            (Some("a"), Some("b"))
        );
        // A backslash at the very end of an unquoted value is dropped.
        assert_eq!(
            Config::parse(r"user=a\").unwrap().user.as_deref(),
            Some("a")
        );
        // Non-ASCII text passes through.
        assert_eq!(
            Config::parse("dbname='été'").unwrap().dbname.as_deref(),
            Some("été")
        );
        // libpq skips blanks after '=', so an empty unquoted value takes the next word.
        assert_eq!(
            Config::parse("user= dbname=x").unwrap().user.as_deref(),
            Some("dbname=x")
        );
    }

    #[test]
    fn key_value_errors() {
        assert_eq!(
            err("host"),
            "missing \"=\" after \"host\" in connection info string"
        );
        assert_eq!(
            err("host localhost"),
            "missing \"=\" after \"host\" in connection info string"
        );
        assert_eq!(err("foo=bar"), "invalid connection option \"foo\"");
        assert_eq!(err("=bar"), "invalid connection option \"\"");
        assert_eq!(err("HOST=x"), "invalid connection option \"HOST\"");
        assert_eq!(
            err("user='abc"),
            "unterminated quoted string in connection info string"
        );
        assert_eq!(
            err(r"user='abc\'"),
            "unterminated quoted string in connection info string"
        );
        assert_eq!(
            err("password='hunter2"),
            "unterminated quoted string in connection info string"
        );
    }

    #[test]
    fn ignored_libpq_keywords_are_accepted() {
        let c = Config::parse(
            "sslcert=a sslkey=b sslrootcert=c sslsni=1 channel_binding=prefer \
             target_session_attrs=any keepalives=1 keepalives_idle=5 keepalives_interval=5 \
             keepalives_count=3 gssencmode=disable sslnegotiation=postgres replication=true \
             client_encoding=UTF8 krbsrvname=postgres service=x load_balance_hosts=disable",
        )
        .unwrap();
        assert_eq!(c, Config::default());
        for key in IGNORED_KEYWORDS {
            assert!(is_known_keyword(key));
            Config::default().set(key, "whatever").unwrap();
        }
    }

    #[test]
    fn port_values() {
        let port = |v: &str| {
            let mut c = Config::default();
            c.set("port", v).map(|()| c.port).map_err(|e| e.to_string())
        };
        assert_eq!(port("5432"), Ok(Some(5432)));
        assert_eq!(port(" 1 "), Ok(Some(1)));
        assert_eq!(port("+65535"), Ok(Some(65535)));
        assert_eq!(port(""), Ok(None));
        for bad in ["0", "65536", "-1", "abc", "54x", "99999999999", " "] {
            assert_eq!(port(bad), Err(format!("invalid port number: \"{bad}\"")));
        }
        assert_eq!(
            port("5432,5433"),
            Err("multiple hosts are not supported yet".into())
        );
    }

    #[test]
    fn connect_timeout_values() {
        let timeout = |v: &str| {
            let mut c = Config::default();
            c.set("connect_timeout", v)
                .map(|()| c.connect_timeout)
                .map_err(|e| e.to_string())
        };
        assert_eq!(timeout("10"), Ok(Some(Duration::from_secs(10))));
        assert_eq!(timeout(" 3 "), Ok(Some(Duration::from_secs(3))));
        assert_eq!(timeout("1"), Ok(Some(Duration::from_secs(2))));
        assert_eq!(timeout("0"), Ok(Some(Duration::ZERO)));
        assert_eq!(timeout("-5"), Ok(Some(Duration::ZERO)));
        assert_eq!(
            timeout("2147483647"),
            Ok(Some(Duration::from_secs(2147483647)))
        );
        assert_eq!(timeout(""), Ok(None));
        for bad in ["x", "1.5", "2147483648", "10s"] {
            assert_eq!(
                timeout(bad),
                Err(format!(
                    "invalid integer value \"{bad}\" for connection option \"connect_timeout\""
                ))
            );
        }
        // An explicit zero means no timeout.
        let p = Config::parse("connect_timeout=0")
            .unwrap()
            .resolve_in(false, &os(None))
            .unwrap();
        assert_eq!(p.connect_timeout, None);
    }

    #[test]
    fn sslmode_names() {
        for mode in [
            SslMode::Disable,
            SslMode::Allow,
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
            SslMode::VerifyFull,
        ] {
            assert_eq!(mode.to_string().parse::<SslMode>().unwrap(), mode);
        }
        assert_eq!(SslMode::VerifyCa.to_string(), "verify-ca");
        assert_eq!(SslMode::VerifyFull.as_str(), "verify-full");
        assert_eq!(SslMode::default(), SslMode::Prefer);
        assert_eq!(err("sslmode=Require"), "invalid sslmode value: \"Require\"");
        assert_eq!(
            err("sslmode=verify_ca"),
            "invalid sslmode value: \"verify_ca\""
        );
        assert_eq!(Config::parse("sslmode=''").unwrap().sslmode, None);
    }

    #[test]
    fn hosts() {
        assert_eq!(err("host=a,b"), "multiple hosts are not supported yet");
        assert_eq!(
            err("hostaddr=127.0.0.1,::1"),
            "multiple hosts are not supported yet"
        );
        assert_eq!(
            err("hostaddr=db1"),
            "could not parse network address \"db1\""
        );
        let c = Config::parse("hostaddr=::1").unwrap();
        assert_eq!(c.hostaddr.as_deref(), Some("::1"));
        assert_eq!(Host::Tcp("db".into()).to_string(), "db");
        assert_eq!(Host::Unix("/tmp".into()).to_string(), "/tmp");
    }

    #[test]
    fn environment_fills_unset_fields_only() {
        let vars = [
            ("PGHOST", "envhost"),
            ("PGHOSTADDR", "10.0.0.1"),
            ("PGPORT", "6000"),
            ("PGUSER", "envuser"),
            ("PGPASSWORD", "envpw"),
            ("PGPASSFILE", "/env/pgpass"),
            ("PGDATABASE", "envdb"),
            ("PGAPPNAME", "envapp"),
            ("PGOPTIONS", "-cenv=1"),
            ("PGCONNECT_TIMEOUT", "7"),
            ("PGSSLMODE", "disable"),
        ];
        let mut c = Config::default();
        c.apply_env(env(&vars)).unwrap();
        assert_eq!(c.host.as_deref(), Some("envhost"));
        assert_eq!(c.hostaddr.as_deref(), Some("10.0.0.1"));
        assert_eq!(c.port, Some(6000));
        assert_eq!(c.user.as_deref(), Some("envuser"));
        assert_eq!(c.password.as_deref(), Some("envpw"));
        assert_eq!(c.passfile.as_deref(), Some(Path::new("/env/pgpass")));
        assert_eq!(c.dbname.as_deref(), Some("envdb"));
        assert_eq!(c.application_name.as_deref(), Some("envapp"));
        assert_eq!(c.options.as_deref(), Some("-cenv=1"));
        assert_eq!(c.connect_timeout, Some(Duration::from_secs(7)));
        assert_eq!(c.sslmode, Some(SslMode::Disable));

        // Explicit settings, even empty ones, beat the environment.
        let mut c = Config::parse(
            "host='' port=5 user=u password=p dbname=d sslmode=prefer \
                                   connect_timeout=0 application_name=a options=o passfile=f \
                                   hostaddr=::1",
        )
        .unwrap();
        let before = c.clone();
        c.apply_env(env(&vars)).unwrap();
        assert_eq!(c, before);
    }

    #[test]
    fn environment_errors_name_the_variable() {
        let mut c = Config::parse("user=u").unwrap();
        let before = c.clone();
        let e = c
            .apply_env(env(&[("PGHOST", "h"), ("PGPORT", "x")]))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "environment variable PGPORT: invalid port number: \"x\""
        );
        assert_eq!(c, before, "a failed apply_env changes nothing");
        let e = c.apply_env(env(&[("PGSSLMODE", "on")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "environment variable PGSSLMODE: invalid sslmode value: \"on\""
        );
        let e = c.apply_env(env(&[("PGCONNECT_TIMEOUT", "x")])).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("environment variable PGCONNECT_TIMEOUT: "));
        let e = c.apply_env(env(&[("PGHOST", "a,b")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "environment variable PGHOST: multiple hosts are not supported yet"
        );
        // A bad value is not looked at when the field is already set.
        let mut c = Config::parse("port=5432").unwrap();
        c.apply_env(env(&[("PGPORT", "x")])).unwrap();
        assert_eq!(c.port, Some(5432));
    }

    #[test]
    fn resolve_defaults() {
        let p = Config::default().resolve_in(false, &os(None)).unwrap();
        assert_eq!(p.host, Host::Unix("/var/run/postgresql".into()));
        assert_eq!(p.hostaddr, None);
        assert_eq!(p.port, 5432);
        assert_eq!(p.user, "alice");
        assert_eq!(p.dbname, "alice");
        assert_eq!(p.password, None);
        assert_eq!(p.application_name, None);
        assert_eq!(p.options, None);
        assert_eq!(p.connect_timeout, None);
        assert_eq!(p.sslmode, SslMode::Prefer);
        assert!(p.warnings.is_empty());
        // Empty strings mean the default too.
        let c = Config::parse("host='' user='' dbname='' options='' application_name=''").unwrap();
        assert_eq!(c.resolve_in(false, &os(None)).unwrap(), p);
    }

    #[test]
    fn resolve_explicit_values() {
        let c = Config::parse(
            "host=/tmp port=5433 user=bob dbname=db application_name='' \
             fallback_application_name=fb connect_timeout=5 sslmode=disable",
        )
        .unwrap();
        let p = c.resolve_in(false, &os(None)).unwrap();
        assert_eq!(p.host, Host::Unix("/tmp".into()));
        assert_eq!(
            (p.port, p.user.as_str(), p.dbname.as_str()),
            (5433, "bob", "db")
        );
        assert_eq!(p.application_name.as_deref(), Some("fb"));
        assert_eq!(p.connect_timeout, Some(Duration::from_secs(5)));
        assert_eq!(p.sslmode, SslMode::Disable);
        let c = Config::parse("application_name=app fallback_application_name=fb").unwrap();
        let p = c.resolve_in(false, &os(None)).unwrap();
        assert_eq!(p.application_name.as_deref(), Some("app"));

        let p = Config::parse("host=db.example hostaddr=10.1.2.3")
            .unwrap()
            .resolve_in(false, &os(None))
            .unwrap();
        assert_eq!(p.host, Host::Tcp("db.example".into()));
        assert_eq!(p.hostaddr.as_deref(), Some("10.1.2.3"));
        // A bare hostaddr stands in for the host name.
        let p = Config::parse("hostaddr=10.1.2.3")
            .unwrap()
            .resolve_in(false, &os(None))
            .unwrap();
        assert_eq!(p.host, Host::Tcp("10.1.2.3".into()));
    }

    #[test]
    fn resolve_errors() {
        for mode in ["require", "verify-ca", "verify-full"] {
            let e = Config::parse(&format!("sslmode={mode}"))
                .unwrap()
                .resolve_in(false, &os(None));
            assert_eq!(
                e.unwrap_err().to_string(),
                format!("TLS is not supported yet (sslmode={mode})")
            );
        }
        let nobody = Os {
            user: None,
            ..os(None)
        };
        let e = Config::default().resolve_in(false, &nobody).unwrap_err();
        assert_eq!(
            e.to_string(),
            "could not determine the local user name; set \"user\" or PGUSER"
        );
        let p = Config::parse("user=u")
            .unwrap()
            .resolve_in(false, &nobody)
            .unwrap();
        assert_eq!(p.dbname, "u");
    }

    /// A directory under the temp directory with a unique name, removed on drop.
    struct TempHome(PathBuf);

    impl TempHome {
        fn with_pgpass(contents: &str, mode: u32) -> TempHome {
            use std::os::unix::fs::PermissionsExt;
            use std::sync::atomic::{AtomicUsize, Ordering};
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "pgwire-repl-config-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let file = dir.join(".pgpass");
            std::fs::write(&file, contents).unwrap();
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
            TempHome(dir)
        }
    }

    impl Drop for TempHome {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const PGPASS: &str = "# test file\n\
                          localhost:5432:replication:alice:socket-repl\n\
                          localhost:5432:*:alice:socket-any\n\
                          /srv/pg:*:*:alice:srv\n\
                          db\\:x:*:*:*:escaped\n\
                          db1:5433:replication:*:tcp-repl\n\
                          db1:*:*:*:tcp-any\n";

    #[test]
    fn resolve_reads_the_password_file() {
        let home = TempHome::with_pgpass(PGPASS, 0o600);
        let os = os(Some(&home.0));
        let password = |conninfo: &str, replication: bool| {
            let p = Config::parse(conninfo)
                .unwrap()
                .resolve_in(replication, &os)
                .unwrap();
            assert!(p.warnings.is_empty(), "{:?}", p.warnings);
            p.password
        };
        assert_eq!(password("", true).as_deref(), Some("socket-repl"));
        assert_eq!(password("", false).as_deref(), Some("socket-any"));
        assert_eq!(password("host=/tmp", false).as_deref(), Some("socket-any"));
        assert_eq!(password("host=/tmp/ port=5433", false), None);
        assert_eq!(password("host=/srv/pg", true).as_deref(), Some("srv"));
        assert_eq!(
            password("host=db1 port=5433", true).as_deref(),
            Some("tcp-repl")
        );
        assert_eq!(
            password("host=db1 port=5433", false).as_deref(),
            Some("tcp-any")
        );
        assert_eq!(password("host=db1", true).as_deref(), Some("tcp-any"));
        assert_eq!(password("host=db:x", false).as_deref(), Some("escaped"));
        assert_eq!(
            password("host=localhost", false).as_deref(),
            Some("socket-any")
        );
        assert_eq!(password("host=db2", false), None);
        assert_eq!(
            password("host=db1 user=bob", false).as_deref(),
            Some("tcp-any")
        );
        // A given password wins; an empty one does not count.
        assert_eq!(
            password("host=db1 password=given", false).as_deref(),
            Some("given")
        );
        assert_eq!(
            password("host=db1 password=''", false).as_deref(),
            Some("tcp-any")
        );
        // passfile= names another file; a missing one is silently ignored.
        let other = TempHome::with_pgpass("*:*:*:*:other\n", 0o600);
        let conninfo = format!("host=db1 passfile='{}'", other.0.join(".pgpass").display());
        assert_eq!(password(&conninfo, false).as_deref(), Some("other"));
        let conninfo = format!("host=db1 passfile='{}'", other.0.join("missing").display());
        assert_eq!(password(&conninfo, false), None);
        // No home directory, no file.
        let p = Config::parse("host=db1")
            .unwrap()
            .resolve_in(false, &self::os(None))
            .unwrap();
        assert_eq!(p.password, None);
    }

    #[test]
    fn insecure_password_file_is_a_warning() {
        let home = TempHome::with_pgpass(PGPASS, 0o644);
        let p = Config::parse("host=db1")
            .unwrap()
            .resolve_in(false, &os(Some(&home.0)))
            .unwrap();
        assert_eq!(p.password, None);
        assert_eq!(
            p.warnings,
            [format!(
                "password file \"{}\" has group or world access; permissions should be u=rw (0600) or less",
                home.0.join(".pgpass").display()
            )]
        );
    }

    #[test]
    fn debug_never_shows_the_password() {
        let c = Config::parse("host=h user=u password=hunter2").unwrap();
        let debug = format!("{c:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains(r#"password: Some("***")"#), "{debug}");
        assert!(debug.contains(r#"user: Some("u")"#), "{debug}");
        assert!(format!("{:?}", Config::default()).contains("password: None"));
        let p = c.resolve_in(false, &os(None)).unwrap();
        let debug = format!("{p:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains(r#"password: Some("***")"#), "{debug}");
        let debug = format!("{:#?}", Config::parse("postgresql://u:hunter2@h").unwrap());
        assert!(!debug.contains("hunter2"), "{debug}");
    }

    #[test]
    fn passwd_lookup() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      # odd line\n\
                      short:x:7\n\
                      alice:x:1000:1000:Alice,,,:/home/alice:/bin/sh\n";
        assert_eq!(
            passwd_entry(passwd, 1000),
            Some(("alice".into(), "/home/alice".into()))
        );
        assert_eq!(
            passwd_entry(passwd, 0),
            Some(("root".into(), "/root".into()))
        );
        assert_eq!(passwd_entry(passwd, 7), None);
        assert_eq!(passwd_entry(passwd, 1), None);
    }

    #[test]
    fn resolve_on_this_machine() {
        // The real probe: whatever it finds, an explicit user makes resolve succeed and the
        // default socket directory is one of the candidates.
        let p = Config::parse("user=u").unwrap().resolve(false).unwrap();
        let Host::Unix(dir) = &p.host else {
            panic!("{:?}", p.host)
        };
        assert!(
            DEFAULT_SOCKET_DIRS.iter().any(|d| dir == Path::new(d)),
            "{dir:?}"
        );
        // When the effective uid is in /etc/passwd, that name is the default user.
        let entry = effective_uid()
            .and_then(|uid| passwd_entry(&std::fs::read_to_string("/etc/passwd").ok()?, uid));
        if let Some((name, _)) = entry {
            assert_eq!(Os::probe().user, Some(name));
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC*") {
            let _ = Config::parse(&s);
        }

        #[test]
        fn parse_uri_never_panics(s in "[a-z0-9:/@?&=%\\[\\],'\\\\ é.-]*") {
            let _ = Config::parse(&format!("postgresql://{s}"));
            let _ = Config::parse(&s);
        }

        #[test]
        fn parse_key_value_never_panics(s in "([a-z_]{0,12}[ =']{0,3}[a-z0-9\\\\' ]{0,8})*") {
            let _ = Config::parse(&s);
        }
    }
}
