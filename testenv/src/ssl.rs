//! TLS on a test server: certificate files, `ssl = on`, and `pg_hba.conf` lines of the
//! test's own (`hostssl … cert`, say).

use std::os::unix::fs::PermissionsExt;

use crate::cluster::Cluster;
use crate::error::{IoContext, Result};

impl Cluster {
    /// Turns TLS on: writes the server's certificate and key (PEM; the key with mode 0600,
    /// owned by the server's OS user, as PostgreSQL demands) and, if given, the CA that
    /// client certificates must chain to (`ssl_ca_file`, needed by `hostssl … cert`) into
    /// the data directory, appends the settings to `postgresql.conf` and restarts.
    pub fn enable_ssl(&self, cert_pem: &str, key_pem: &str, ca_pem: Option<&str>) -> Result<()> {
        self.write_file("server.crt", cert_pem)?;
        // Private before the key goes in.
        self.write_file("server.key", "")?;
        let key = self.data_dir().join("server.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
            .context(|| format!("cannot chmod {}", key.display()))?;
        self.write_file("server.key", key_pem)?;
        let mut conf = String::from(
            "\n# Added by testenv for TLS.\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n",
        );
        if let Some(ca) = ca_pem {
            self.write_file("root.crt", ca)?;
            conf.push_str("ssl_ca_file = 'root.crt'\n");
        }
        self.append_file("postgresql.conf", &conf)?;
        self.restart()
    }

    /// Puts `lines` at the top of `pg_hba.conf`, where they win over testenv's own (the
    /// first matching line decides), and restarts.
    pub fn prepend_hba(&self, lines: &[&str]) -> Result<()> {
        let path = self.data_dir().join("pg_hba.conf");
        let old =
            std::fs::read_to_string(&path).context(|| format!("cannot read {}", path.display()))?;
        let mut text = String::from("# Added by the test.\n");
        for line in lines {
            text.push_str(line);
            text.push('\n');
        }
        text.push_str(&old);
        self.write_file("pg_hba.conf", &text)?;
        self.restart()
    }

    fn append_file(&self, name: &str, text: &str) -> Result<()> {
        let path = self.data_dir().join(name);
        let mut all =
            std::fs::read_to_string(&path).context(|| format!("cannot read {}", path.display()))?;
        all.push_str(text);
        self.write_file(name, &all)
    }
}
