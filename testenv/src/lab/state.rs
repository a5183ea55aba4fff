//! The lab's state file: which programs, which password, which ports, who is primary.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

/// The state file's name inside the lab directory.
pub(crate) const FILE: &str = "lab.conf";

/// The two servers, by name; each keeps its directory and port for the lab's life.
pub const NODES: [&str; 2] = ["node1", "node2"];

/// What the commands after `up` need to find the lab again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct State {
    /// The server programs' directory.
    pub bindir: PathBuf,
    /// The replicator role's password.
    pub password: String,
    /// The `postgres` superuser's password (labs made before it existed have none).
    pub admin_password: Option<String>,
    /// Index in [`NODES`] of the primary.
    pub primary: usize,
    /// Each node's port, in [`NODES`] order.
    pub ports: [u16; 2],
}

impl State {
    pub fn to_text(&self) -> String {
        format!(
            "# The testenv lab in this directory: written by `testenv up`, `promote` and \
             `rejoin`.\n\
             format = 1\n\
             bindir = {}\n\
             password = {}\n\
             {}\
             primary = {}\n\
             {} = {}\n\
             {} = {}\n",
            self.bindir.display(),
            self.password,
            self.admin_password
                .as_ref()
                .map(|p| format!("admin_password = {p}\n"))
                .unwrap_or_default(),
            NODES[self.primary],
            port_key(0),
            self.ports[0],
            port_key(1),
            self.ports[1],
        )
    }

    pub fn parse(text: &str) -> std::result::Result<State, String> {
        let mut fields = std::collections::HashMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| format!("not key = value: {line:?}"))?;
            fields.insert(k.trim().to_string(), v.trim().to_string());
        }
        let field = |k: &str| {
            fields
                .get(k)
                .map(String::as_str)
                .ok_or_else(|| format!("no {k}"))
        };
        if field("format")? != "1" {
            return Err(format!("unknown format {}", field("format")?));
        }
        let primary = field("primary")?;
        let primary = NODES
            .iter()
            .position(|n| *n == primary)
            .ok_or_else(|| format!("unknown primary {primary:?}"))?;
        let port = |i: usize| {
            let key = port_key(i);
            field(&key)?
                .parse()
                .map_err(|_| format!("{key} is not a port"))
        };
        Ok(State {
            bindir: PathBuf::from(field("bindir")?),
            password: field("password")?.to_string(),
            admin_password: fields.get("admin_password").cloned(),
            primary,
            ports: [port(0)?, port(1)?],
        })
    }

    /// Reads `dir`'s state file.
    pub fn load(dir: &Path) -> Result<State> {
        let path = dir.join(FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::new(format!(
                    "no lab in {} (`testenv up` makes one)",
                    dir.display()
                )))
            }
            Err(e) => return Err(e).context(|| format!("cannot read {}", path.display())),
        };
        State::parse(&text).map_err(|e| Error::new(format!("{} is damaged: {e}", path.display())))
    }

    /// Writes the state file (mode 0600: it holds a password) through a rename.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join(FILE);
        let tmp = dir.join(format!("{FILE}.tmp"));
        std::fs::write(&tmp, self.to_text())
            .and_then(|()| std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)))
            .and_then(|()| std::fs::rename(&tmp, &path))
            .context(|| format!("cannot write {}", path.display()))
    }
}

fn port_key(i: usize) -> String {
    format!("{}.port", NODES[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let s = State {
            bindir: PathBuf::from("/usr/lib/postgresql/15/bin"),
            password: "abc123".into(),
            admin_password: Some("def456".into()),
            primary: 1,
            ports: [40001, 40002],
        };
        assert_eq!(State::parse(&s.to_text()).unwrap(), s);
        assert!(s.to_text().contains("node2.port = 40002\n"));
        assert!(State::parse("format = 2\n").is_err());
        assert!(State::parse("garbage").is_err());
        let no_port = s.to_text().replace("node1.port = 40001\n", "");
        assert_eq!(State::parse(&no_port).unwrap_err(), "no node1.port");
        // A lab made before the superuser had a password still opens.
        let old = s.to_text().replace("admin_password = def456\n", "");
        assert_eq!(State::parse(&old).unwrap().admin_password, None);
    }
}
