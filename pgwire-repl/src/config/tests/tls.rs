//! TLS, channel binding, session and host-list options.

use super::*;

#[test]
fn tls_and_session_keywords() {
    let c = Config::parse(
        "sslcert=a sslkey=b sslrootcert=c sslsni=0 channel_binding=require \
         target_session_attrs=read-write sslnegotiation=direct sslmode=verify-full",
    )
    .unwrap();
    assert_eq!(c.sslcert.as_deref(), Some("a"));
    assert_eq!(c.sslkey.as_deref(), Some("b"));
    assert_eq!(c.sslrootcert.as_deref(), Some("c"));
    assert_eq!(c.sslsni, Some(false));
    assert_eq!(c.channel_binding, Some(ChannelBindingMode::Require));
    assert_eq!(c.target_session_attrs, Some(TargetSessionAttrs::ReadWrite));
    assert_eq!(c.sslnegotiation, Some(SslNegotiation::Direct));
    assert_eq!(c.sslmode, Some(SslMode::VerifyFull));
    for key in KEYWORDS {
        assert!(is_known_keyword(key), "{key}");
    }
    assert_eq!(
        err("channel_binding=on"),
        "invalid channel_binding value: \"on\""
    );
    assert_eq!(
        err("target_session_attrs=master"),
        "invalid target_session_attrs value: \"master\""
    );
    assert_eq!(err("sslsni=yes"), "invalid sslsni value: \"yes\"");
    assert_eq!(
        err("load_balance_hosts=random"),
        "load_balance_hosts=random is not supported"
    );
    // The environment.
    let mut c = Config::default();
    c.apply_env(env(&[
        ("PGSSLROOTCERT", "/r"),
        ("PGSSLCERT", "/c"),
        ("PGSSLKEY", "/k"),
        ("PGSSLSNI", "0"),
        ("PGCHANNELBINDING", "disable"),
        ("PGTARGETSESSIONATTRS", "standby"),
        ("PGSSLNEGOTIATION", "postgres"),
    ]))
    .unwrap();
    assert_eq!(
        (
            c.sslrootcert.as_deref(),
            c.sslcert.as_deref(),
            c.sslkey.as_deref()
        ),
        (Some("/r"), Some("/c"), Some("/k"))
    );
    assert_eq!(c.sslsni, Some(false));
    assert_eq!(c.channel_binding, Some(ChannelBindingMode::Disable));
    assert_eq!(c.target_session_attrs, Some(TargetSessionAttrs::Standby));
    assert_eq!(c.sslnegotiation, Some(SslNegotiation::Postgres));
}

#[test]
fn host_lists() {
    let resolve = |s: &str| Config::parse(s).unwrap().resolve_in(false, &os(None));
    let p = resolve("host=a,/tmp,,b port=1,2,3,4").unwrap();
    let hosts: Vec<(Host, u16)> = p.hosts.iter().map(|h| (h.host.clone(), h.port)).collect();
    assert_eq!(
        hosts,
        [
            (Host::Tcp("a".into()), 1),
            (Host::Unix("/tmp".into()), 2),
            (Host::Unix("/var/run/postgresql".into()), 3),
            (Host::Tcp("b".into()), 4),
        ]
    );
    // One port for all; empty entries are the default port.
    let p = resolve("host=a,b port=6000").unwrap();
    assert_eq!(
        p.hosts.iter().map(|h| h.port).collect::<Vec<_>>(),
        [6000, 6000]
    );
    let p = resolve("host=a,b port=,6000").unwrap();
    assert_eq!(
        p.hosts.iter().map(|h| h.port).collect::<Vec<_>>(),
        [5432, 6000]
    );
    let p = resolve("host=a,b").unwrap();
    assert_eq!(
        p.hosts.iter().map(|h| h.port).collect::<Vec<_>>(),
        [5432, 5432]
    );
    // hostaddr lists pair with host names.
    let p = resolve("host=a,b hostaddr=10.0.0.1,::1").unwrap();
    assert_eq!(p.hosts[1].host, Host::Tcp("b".into()));
    assert_eq!(p.hosts[1].hostaddr.as_deref(), Some("::1"));
    let p = resolve("hostaddr=10.0.0.1,10.0.0.2").unwrap();
    assert_eq!(p.hosts[1].host, Host::Tcp("10.0.0.2".into()));
    assert_eq!(
        resolve("host=a,b,c port=1,2").unwrap_err().to_string(),
        "could not match 2 port numbers to 3 hosts"
    );
    assert_eq!(
        resolve("host=a,b hostaddr=::1").unwrap_err().to_string(),
        "could not match 2 host names to 1 hostaddr values"
    );
    // The password file is read per host.
    let home = home_with_pgpass("a:1:*:*:pw-a\nb:2:*:*:pw-b\n", 0o600);
    let p = Config::parse("host=a,b,c port=1,2,3")
        .unwrap()
        .resolve_in(false, &os(Some(home.path())))
        .unwrap();
    let pw: Vec<Option<&str>> = p.hosts.iter().map(|h| h.password.as_deref()).collect();
    assert_eq!(pw, [Some("pw-a"), Some("pw-b"), None]);
    // The Debug text hides them.
    assert!(!format!("{p:?}").contains("pw-a"));
}

#[test]
fn tls_files_and_modes() {
    let home = home_with_pgpass("", 0o600);
    let dot = home.path().join(".postgresql");
    std::fs::create_dir_all(&dot).unwrap();
    let resolve = |s: &str| {
        Config::parse(s)
            .unwrap()
            .resolve_in(false, &os(Some(home.path())))
    };
    // Nothing in ~/.postgresql: no root certificate, no client certificate.
    let p = resolve("sslmode=require").unwrap();
    assert_eq!(
        p.tls.root_cert,
        RootCert::Missing(Some(dot.join("root.crt")))
    );
    assert_eq!(
        (p.tls.client_cert.as_ref(), p.tls.client_key.as_ref()),
        (None, None)
    );
    assert!(!p.tls.verifies_chain(p.sslmode));
    assert!(p.tls.sni);
    // With the default files present: require verifies the chain, as libpq.
    for f in ["root.crt", "postgresql.crt", "postgresql.key"] {
        std::fs::write(dot.join(f), "").unwrap();
    }
    let p = resolve("sslmode=require").unwrap();
    assert_eq!(p.tls.root_cert, RootCert::File(dot.join("root.crt")));
    assert!(p.tls.verifies_chain(SslMode::Require));
    assert_eq!(p.tls.client_cert, Some(dot.join("postgresql.crt")));
    assert_eq!(p.tls.client_key, Some(dot.join("postgresql.key")));
    // Named files win; a named certificate that does not exist means none.
    let p =
        resolve("sslrootcert=/nonexistent/ca.pem sslcert=/nonexistent/c.crt sslkey=/k").unwrap();
    assert_eq!(
        p.tls.root_cert,
        RootCert::Missing(Some("/nonexistent/ca.pem".into()))
    );
    assert_eq!((p.tls.client_cert, p.tls.client_key), (None, None));
    let under_a_file = dot.join("root.crt/c.crt");
    let p = resolve(&format!("sslcert={}", under_a_file.display())).unwrap();
    assert_eq!(p.tls.client_cert, None);
    // A directory is no certificate, but something there: an error when TLS starts.
    let p = resolve(&format!("sslcert={}", dot.display())).unwrap();
    assert_eq!(p.tls.client_cert, Some(dot.clone()));
    // sslrootcert=system: verify-full by default, nothing weaker.
    let p = resolve("sslrootcert=system").unwrap();
    assert_eq!(
        (p.sslmode, p.tls.root_cert),
        (SslMode::VerifyFull, RootCert::System)
    );
    assert_eq!(
        resolve("sslrootcert=system sslmode=verify-ca")
            .unwrap_err()
            .to_string(),
        "weak sslmode \"verify-ca\" may not be used with sslrootcert=system (use \"verify-full\")"
    );
    // Direct negotiation needs a mode that requires TLS.
    assert!(resolve("sslnegotiation=direct sslmode=require").is_ok());
    assert_eq!(
        resolve("sslnegotiation=direct").unwrap_err().to_string(),
        "weak sslmode \"prefer\" may not be used with sslnegotiation=direct (use \"require\", \"verify-ca\", or \"verify-full\")"
    );
    // No home: nothing to find.
    let p = Config::parse("sslmode=verify-ca")
        .unwrap()
        .resolve_in(false, &os(None))
        .unwrap();
    assert_eq!(p.tls.root_cert, RootCert::Missing(None));
    assert!(p.tls.verifies_chain(p.sslmode));
    let p = resolve("sslsni=0 channel_binding=require target_session_attrs=primary").unwrap();
    assert!(!p.tls.sni);
    assert_eq!(p.channel_binding, ChannelBindingMode::Require);
    assert_eq!(p.target_session_attrs, TargetSessionAttrs::Primary);
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
