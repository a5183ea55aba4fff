//! The enumerated libpq settings: `sslmode`, `sslnegotiation`, `target_session_attrs`.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// Defines an enum of libpq keyword values with `as_str`, `Display` and `FromStr`.
macro_rules! keyword_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($keyword:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// libpq's name for the value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(s: &str) -> Result<$name> {
                match s {
                    $( $text => Ok($name::$variant), )+
                    _ => Err(Error::config(format!(
                        concat!("invalid ", $keyword, " value: \"{}\""),
                        s
                    ))),
                }
            }
        }
    };
}

keyword_enum! {
    /// libpq's `sslmode`, with libpq's meaning. TLS is only ever used over TCP; a Unix socket
    /// ignores the mode.
    pub enum SslMode ("sslmode") {
        /// Plaintext only.
        Disable = "disable",
        /// Plaintext first; TLS if the server rejects the plaintext attempt.
        Allow = "allow",
        /// TLS if the server supports it, else plaintext (the default).
        #[default]
        Prefer = "prefer",
        /// TLS or fail. The certificate is not checked, unless a root certificate file is
        /// present (`sslrootcert` or `~/.postgresql/root.crt`): then as `verify-ca`.
        Require = "require",
        /// TLS, and the server's certificate chain must lead to a root in `sslrootcert`.
        VerifyCa = "verify-ca",
        /// As `verify-ca`, and the certificate must name the host (DNS name or IP address).
        VerifyFull = "verify-full",
    }
}

impl SslMode {
    /// Whether the mode refuses a plaintext connection.
    pub fn requires_tls(self) -> bool {
        matches!(
            self,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
        )
    }
}

keyword_enum! {
    /// libpq's `sslnegotiation` (PostgreSQL 17): how TLS starts.
    pub enum SslNegotiation ("sslnegotiation") {
        /// An SSLRequest first, then the TLS handshake if the server answers `S`.
        #[default]
        Postgres = "postgres",
        /// The TLS handshake at once, with ALPN `postgresql` (servers 17 and later only);
        /// needs `sslmode` require or stricter.
        Direct = "direct",
    }
}

keyword_enum! {
    /// libpq's `target_session_attrs`: which server of a host list will do. Checked after
    /// connecting; a server that does not match counts as a failed host and the next one is
    /// tried.
    pub enum TargetSessionAttrs ("target_session_attrs") {
        /// Any server (the default).
        #[default]
        Any = "any",
        /// A server that accepts writes: neither a hot standby nor `default_transaction_read_only`.
        ReadWrite = "read-write",
        /// The opposite of `read-write`.
        ReadOnly = "read-only",
        /// A server that is not in hot standby.
        Primary = "primary",
        /// A server in hot standby.
        Standby = "standby",
        /// A standby if any host is one (all hosts are tried for that first), else any server.
        PreferStandby = "prefer-standby",
    }
}

/// libpq's `load_balance_hosts`: only `disable` (hosts tried in the order given) is
/// supported.
pub(super) fn check_load_balance_hosts(value: &str) -> Result<()> {
    match value {
        "" | "disable" => Ok(()),
        "random" => Err(Error::config("load_balance_hosts=random is not supported")),
        _ => Err(Error::config(format!(
            "invalid load_balance_hosts value: \"{value}\""
        ))),
    }
}

/// libpq's `sslsni`: `1` (the default) sends the host name in the TLS handshake.
pub(super) fn parse_sslsni(value: &str) -> Result<bool> {
    match value {
        "1" => Ok(true),
        "0" => Ok(false),
        _ => Err(Error::config(format!("invalid sslsni value: \"{value}\""))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in [SslNegotiation::Postgres, SslNegotiation::Direct] {
            assert_eq!(m.to_string().parse::<SslNegotiation>().unwrap(), m);
        }
        for t in [
            TargetSessionAttrs::Any,
            TargetSessionAttrs::ReadWrite,
            TargetSessionAttrs::ReadOnly,
            TargetSessionAttrs::Primary,
            TargetSessionAttrs::Standby,
            TargetSessionAttrs::PreferStandby,
        ] {
            assert_eq!(t.to_string().parse::<TargetSessionAttrs>().unwrap(), t);
        }
        assert_eq!(
            "master"
                .parse::<TargetSessionAttrs>()
                .unwrap_err()
                .to_string(),
            "invalid target_session_attrs value: \"master\""
        );
        assert_eq!(
            "tls".parse::<SslNegotiation>().unwrap_err().to_string(),
            "invalid sslnegotiation value: \"tls\""
        );
        assert!(parse_sslsni("1").unwrap());
        assert!(!parse_sslsni("0").unwrap());
        assert!(parse_sslsni("yes").is_err());
        assert!(check_load_balance_hosts("disable").is_ok());
        assert_eq!(
            check_load_balance_hosts("random").unwrap_err().to_string(),
            "load_balance_hosts=random is not supported"
        );
    }
}
