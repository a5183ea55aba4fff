use std::path::Path;

use super::*;

mod tls;
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
fn ignored_libpq_keywords_are_accepted() {
    let c = Config::parse(
        "keepalives=1 keepalives_idle=5 keepalives_interval=5 keepalives_count=3 \
         gssencmode=disable replication=true client_encoding=UTF8 krbsrvname=postgres \
         service=x load_balance_hosts=disable sslpassword=x sslcrl=y",
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
        c.set("port", v)
            .map(|()| c.port.clone())
            .map_err(|e| e.to_string())
    };
    assert_eq!(port("5432"), Ok(Some("5432".into())));
    assert_eq!(port(" 1 "), Ok(Some(" 1 ".into())));
    assert_eq!(port("+65535"), Ok(Some("+65535".into())));
    assert_eq!(port(""), Ok(None));
    for bad in ["0", "65536", "-1", "abc", "54x", "99999999999", " "] {
        assert_eq!(port(bad), Err(format!("invalid port number: \"{bad}\"")));
    }
    // Lists: one entry per host, empty entries meaning the default.
    assert_eq!(port("5432,5433"), Ok(Some("5432,5433".into())));
    assert_eq!(port(",5433"), Ok(Some(",5433".into())));
    assert_eq!(port("5432,x"), Err("invalid port number: \"x\"".into()));
    let p = Config::parse("port=' 7 '")
        .unwrap()
        .resolve_in(false, &os(None))
        .unwrap();
    assert_eq!(p.hosts[0].port, 7);
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
fn hosts() {
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
    assert_eq!(c.port.as_deref(), Some("6000"));
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
    let e = c.apply_env(env(&[("PGHOSTADDR", "::1,x")])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "environment variable PGHOSTADDR: could not parse network address \"x\""
    );
    // A bad value is not looked at when the field is already set.
    let mut c = Config::parse("port=5432").unwrap();
    c.apply_env(env(&[("PGPORT", "x")])).unwrap();
    assert_eq!(c.port.as_deref(), Some("5432"));
}

#[test]
fn resolve_defaults() {
    let p = Config::default().resolve_in(false, &os(None)).unwrap();
    assert_eq!(p.hosts[0].host, Host::Unix("/var/run/postgresql".into()));
    assert_eq!(p.hosts[0].hostaddr, None);
    assert_eq!(p.hosts[0].port, 5432);
    assert_eq!(p.user, "alice");
    assert_eq!(p.dbname, "alice");
    assert_eq!(p.hosts[0].password, None);
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
    assert_eq!(p.hosts[0].host, Host::Unix("/tmp".into()));
    assert_eq!(
        (p.hosts[0].port, p.user.as_str(), p.dbname.as_str()),
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
    assert_eq!(p.hosts[0].host, Host::Tcp("db.example".into()));
    assert_eq!(p.hosts[0].hostaddr.as_deref(), Some("10.1.2.3"));
    // A bare hostaddr stands in for the host name.
    let p = Config::parse("hostaddr=10.1.2.3")
        .unwrap()
        .resolve_in(false, &os(None))
        .unwrap();
    assert_eq!(p.hosts[0].host, Host::Tcp("10.1.2.3".into()));
}

#[test]
fn resolve_errors() {
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

/// A home directory holding `.pgpass` with `contents` and `mode`; removed on drop.
fn home_with_pgpass(contents: &str, mode: u32) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("pgwire-repl-config-")
        .tempdir()
        .unwrap();
    let file = dir.path().join(".pgpass");
    std::fs::write(&file, contents).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
    dir
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
    let home = home_with_pgpass(PGPASS, 0o600);
    let os = os(Some(home.path()));
    let password = |conninfo: &str, replication: bool| {
        let p = Config::parse(conninfo)
            .unwrap()
            .resolve_in(replication, &os)
            .unwrap();
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        p.hosts[0].password.clone()
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
    let other = home_with_pgpass("*:*:*:*:other\n", 0o600);
    let conninfo = format!(
        "host=db1 passfile='{}'",
        other.path().join(".pgpass").display()
    );
    assert_eq!(password(&conninfo, false).as_deref(), Some("other"));
    let conninfo = format!(
        "host=db1 passfile='{}'",
        other.path().join("missing").display()
    );
    assert_eq!(password(&conninfo, false), None);
    // No home directory, no file.
    let p = Config::parse("host=db1")
        .unwrap()
        .resolve_in(false, &self::os(None))
        .unwrap();
    assert_eq!(p.hosts[0].password, None);
}

#[test]
fn insecure_password_file_is_a_warning() {
    let home = home_with_pgpass(PGPASS, 0o644);
    let p = Config::parse("host=db1")
        .unwrap()
        .resolve_in(false, &os(Some(home.path())))
        .unwrap();
    assert_eq!(p.hosts[0].password, None);
    assert_eq!(
        p.warnings,
        [format!(
            "password file \"{}\" has group or world access; permissions should be u=rw (0600) or less",
            home.path().join(".pgpass").display()
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
fn resolve_on_this_machine() {
    // The real probe: whatever it finds, an explicit user makes resolve succeed and the
    // default socket directory is one of the candidates.
    let p = Config::parse("user=u").unwrap().resolve(false).unwrap();
    let Host::Unix(dir) = &p.hosts[0].host else {
        panic!("{:?}", p.hosts[0].host)
    };
    assert!(
        DEFAULT_SOCKET_DIRS.iter().any(|d| dir == Path::new(d)),
        "{dir:?}"
    );
    // The effective uid's account is the default user, as the system's own tools see it
    // (getpwuid through NSS, so LDAP and sssd accounts too, not only /etc/passwd): `id -un`
    // names it, or fails when the uid has none.
    let id = std::process::Command::new("id")
        .arg("-un")
        .output()
        .expect("run id -un");
    if id.status.success() {
        let name = String::from_utf8(id.stdout).unwrap().trim().to_owned();
        assert_eq!(Os::probe().user, Some(name.clone()));
        assert_eq!(Config::default().resolve(false).unwrap().user, name);
    } else {
        assert_eq!(os::account(), None);
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
}
