//! The OS user the servers and client tools run as.
//!
//! PostgreSQL refuses to run as root, so when the tests run as root every program is started
//! as an unprivileged user (`postgres` if it exists, else a created `testenv-pg`) through
//! `setpriv` (or `runuser` when `setpriv` is missing). Otherwise programs run as ourselves.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use crate::error::{Error, IoContext, Result};

/// The user created when running as root and no `postgres` user exists.
pub const CREATED_OS_USER: &str = "testenv-pg";

/// Who runs PostgreSQL programs.
#[derive(Debug, Clone)]
pub struct OsUser {
    name: String,
    /// `Some((uid, gid))` when we are root and must switch to this user.
    switch_to: Option<(u32, u32)>,
}

impl OsUser {
    /// The user for this process, decided once.
    pub fn get() -> Result<&'static OsUser> {
        static USER: OnceLock<std::result::Result<OsUser, String>> = OnceLock::new();
        USER.get_or_init(|| OsUser::decide().map_err(|e| format!("{e:?}")))
            .as_ref()
            .map_err(|e| Error::new(e.clone()))
    }

    fn decide() -> Result<OsUser> {
        if !is_root() {
            let name = id(&["-un"])?;
            return Ok(OsUser {
                name,
                switch_to: None,
            });
        }
        let name = if id(&["-u", "postgres"]).is_ok() {
            "postgres".to_string()
        } else {
            if id(&["-u", CREATED_OS_USER]).is_err() {
                let out = Command::new("useradd")
                    .args(["--system", "--no-create-home", "--user-group"])
                    .args(["--shell", "/usr/sbin/nologin", CREATED_OS_USER])
                    .output()
                    .context(|| "cannot run useradd".to_string())?;
                // Another test process may have created it meanwhile: check again below.
                if !out.status.success() && id(&["-u", CREATED_OS_USER]).is_err() {
                    return Err(Error::new(format!(
                        "useradd {CREATED_OS_USER} failed: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    )));
                }
            }
            CREATED_OS_USER.to_string()
        };
        let uid = parse_id(&id(&["-u", &name])?)?;
        let gid = parse_id(&id(&["-g", &name])?)?;
        Ok(OsUser {
            name,
            switch_to: Some((uid, gid)),
        })
    }

    /// The user's name; also the name of each cluster's bootstrap superuser.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether programs are started through a privilege drop (we are root).
    pub fn is_switched(&self) -> bool {
        self.switch_to.is_some()
    }

    /// A command that runs `program` as this user, with every `PG*` variable removed
    /// from its environment and `LC_ALL=C` so that messages are stable.
    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = match self.switch_to {
            None => Command::new(program),
            Some((uid, gid)) if setpriv_exists() => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .arg("--init-groups")
                    .arg("--")
                    .arg(program);
                c
            }
            Some(_) => {
                let mut c = Command::new("runuser");
                c.args(["-u", &self.name, "--"]).arg(program);
                c
            }
        };
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PG") {
                cmd.env_remove(key);
            }
        }
        cmd.env("LC_ALL", "C");
        cmd
    }

    /// Gives `path` (a directory we just created) to this user; a no-op when not root.
    pub fn chown(&self, path: &Path) -> Result<()> {
        match self.switch_to {
            None => Ok(()),
            Some((uid, gid)) => std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .context(|| format!("cannot chown {} to {}", path.display(), self.name)),
        }
    }
}

/// Whether this process runs with effective uid 0. `/proc/self` is owned by the euid.
pub fn is_root() -> bool {
    match std::fs::metadata("/proc/self") {
        Ok(m) => m.uid() == 0,
        Err(_) => id(&["-u"]).map(|u| u == "0").unwrap_or(false),
    }
}

fn setpriv_exists() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    *FOUND.get_or_init(|| {
        Command::new("setpriv")
            .arg("--version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    })
}

fn id(args: &[&str]) -> Result<String> {
    let out = Command::new("id")
        .args(args)
        .output()
        .context(|| "cannot run id".to_string())?;
    if !out.status.success() {
        return Err(Error::new(format!(
            "id {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn parse_id(s: &str) -> Result<u32> {
    s.parse()
        .map_err(|_| Error::new(format!("id printed {s:?}, not a number")))
}
