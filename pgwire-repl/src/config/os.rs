//! What the operating system supplies to [`Config::resolve`](super::Config::resolve): the
//! user name, the home directory (for `~/.pgpass` and `~/.postgresql/*`) and the socket
//! directory. The rules are libpq's:
//!
//! - The user name is the effective uid's account, looked up with `getpwuid_r` as libpq's
//!   `pg_fe_getusername` does, so that accounts from LDAP or sssd (through NSS) count as
//!   well as those in `/etc/passwd`. Where the uid has no account (a container run with an
//!   arbitrary uid), libpq gives up; we take `$USER` instead when it is set.
//! - The home directory is `$HOME` when set and not empty, else the account's home
//!   directory: libpq's `pqGetHomeDirectory` since PostgreSQL 15 (earlier libpq read only
//!   the account).
//! - The socket directory is the first of [`DEFAULT_SOCKET_DIRS`] that exists.
//!
//! [`Os::probe`] does the looking; [`Os::choose`] applies the rules to what it found, so
//! that tests can give it any mix.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::DEFAULT_SOCKET_DIRS;

/// What the operating system supplies to `Config::resolve`; tests build their own.
pub(super) struct Os {
    pub(super) user: Option<String>,
    pub(super) home: Option<PathBuf>,
    pub(super) socket_dir: PathBuf,
}

/// The effective uid's account: its name and home directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Account {
    pub(super) name: String,
    pub(super) home: PathBuf,
}

impl Os {
    pub(super) fn probe() -> Os {
        let socket_dir = DEFAULT_SOCKET_DIRS
            .iter()
            .map(Path::new)
            .find(|dir| dir.is_dir())
            .unwrap_or(Path::new("/tmp"))
            .to_path_buf();
        Os::choose(account(), |var| std::env::var_os(var), socket_dir)
    }

    /// libpq's precedence over what was found: the account's name, else `$USER`; `$HOME`,
    /// else the account's home directory. An empty variable counts as unset.
    pub(super) fn choose(
        account: Option<Account>,
        env: impl Fn(&str) -> Option<OsString>,
        socket_dir: PathBuf,
    ) -> Os {
        let env_nonempty = |var| env(var).filter(|v| !v.is_empty());
        let home = env_nonempty("HOME")
            .map(PathBuf::from)
            .or_else(|| account.as_ref().map(|a| a.home.clone()));
        let user = account
            .map(|a| a.name)
            .or_else(|| env_nonempty("USER").and_then(|u| u.into_string().ok()));
        Os {
            user,
            home,
            socket_dir,
        }
    }
}

/// The effective uid's account (`getpwuid_r`); `None` when it has none or the lookup fails.
#[cfg(unix)]
pub(super) fn account() -> Option<Account> {
    let user = nix::unistd::User::from_uid(nix::unistd::geteuid()).ok()??;
    Some(Account {
        name: user.name,
        home: user.dir,
    })
    .filter(|a| !a.name.is_empty())
}

#[cfg(not(unix))]
pub(super) fn account() -> Option<Account> {
    None
}

/// The effective uid (`geteuid`), where there is one.
#[cfg_attr(not(any(feature = "tokio", test)), allow(dead_code))]
pub(crate) fn effective_uid() -> Option<u32> {
    #[cfg(unix)]
    {
        Some(nix::unistd::geteuid().as_raw())
    }
    #[cfg(not(unix))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Option<Account> {
        Some(Account {
            name: "alice".into(),
            home: "/home/alice".into(),
        })
    }

    fn choose(
        account: Option<Account>,
        vars: &[(&str, &str)],
    ) -> (Option<String>, Option<PathBuf>) {
        let env = |k: &str| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| OsString::from(v))
        };
        let os = Os::choose(account, env, PathBuf::from("/tmp"));
        (os.user, os.home)
    }

    #[test]
    fn libpq_precedence() {
        let some = |s: &str| Some(s.to_owned());
        let path = |s: &str| Some(PathBuf::from(s));
        // The account names the user, whatever $USER says; $HOME comes before its home.
        assert_eq!(
            choose(alice(), &[("USER", "bob"), ("HOME", "/srv/bob")]),
            (some("alice"), path("/srv/bob"))
        );
        assert_eq!(choose(alice(), &[]), (some("alice"), path("/home/alice")));
        assert_eq!(
            choose(alice(), &[("HOME", "")]),
            (some("alice"), path("/home/alice"))
        );
        // A uid without an account: $USER and $HOME, if set.
        assert_eq!(
            choose(None, &[("USER", "bob"), ("HOME", "/srv/bob")]),
            (some("bob"), path("/srv/bob"))
        );
        assert_eq!(choose(None, &[("USER", "")]), (None, None));
    }

    #[test]
    fn account_as_getent_sees_it() {
        // getent reads the same databases (NSS: files, LDAP, sssd): the effective uid's
        // entry names the account and its home directory.
        let uid = effective_uid().unwrap().to_string();
        let getent = match std::process::Command::new("getent")
            .args(["passwd", &uid])
            .output()
        {
            Ok(out) => out,
            Err(e) => {
                eprintln!("SKIPPED: getent passwd {uid}: {e}; the account is not compared");
                return;
            }
        };
        if !getent.status.success() {
            assert_eq!(account(), None, "getent has no entry for uid {uid}");
            return;
        }
        let line = String::from_utf8(getent.stdout).unwrap();
        let fields: Vec<&str> = line.trim_end().split(':').collect();
        assert_eq!(
            account(),
            Some(Account {
                name: fields[0].to_owned(),
                home: PathBuf::from(fields[5]),
            }),
            "{line}"
        );
    }
}
