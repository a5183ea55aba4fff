use super::*;

fn nonce() -> ClientNonce {
    ClientNonce::from_random([7; ClientNonce::RANDOM_BYTES])
}

#[test]
fn out_of_order_and_garbage_are_errors_not_panics() {
    let mut c = ScramClient::new(b"pw", ScramBinding::Unsupported, nonce());
    assert!(c.client_first().starts_with(b"n,,n=,r="));
    assert!(c.server_final(b"v=abc").is_err());
    assert!(c.server_first(b"garbage").is_err());
    assert!(c.server_first(b"r=x,s=c2FsdA==,i=4096").is_err());
    assert!(c.server_final(b"v=abc").is_err());
    assert!(!c.is_finished());
}

#[test]
fn gs2_headers() {
    let y = ScramClient::new(b"pw", ScramBinding::Unrequested, nonce());
    assert!(y.client_first().starts_with(b"y,,n=,r="));
    let p = ScramClient::new(b"pw", ScramBinding::TlsServerEndPoint(vec![1; 32]), nonce());
    assert!(p
        .client_first()
        .starts_with(b"p=tls-server-end-point,,n=,r="));
}

#[test]
fn foreign_nonce_is_rejected() {
    let mut c = ScramClient::new(b"pw", ScramBinding::Unsupported, nonce());
    // The server's nonce must extend ours.
    assert!(c.server_first(b"r=notours,s=c2FsdA==,i=4096").is_err());
}

/// RFC 7677 section 3's example exchange, byte for byte: user "user", password "pencil",
/// client nonce "rOprNGfwEbeRWgbNEkqO".
#[test]
fn rfc7677_example() {
    let nonce = ClientNonce::new("rOprNGfwEbeRWgbNEkqO").unwrap();
    let mut c = ScramClient::with_user("user", b"pencil", ScramBinding::Unsupported, nonce);
    assert_eq!(
        std::str::from_utf8(c.client_first()).unwrap(),
        "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    );
    let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                        s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    let client_final = c.server_first(server_first.as_bytes()).unwrap();
    assert_eq!(
        std::str::from_utf8(client_final).unwrap(),
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
         p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    );
    assert!(!c.is_finished());
    c.server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
        .unwrap();
    assert!(c.is_finished());
}

#[test]
fn rfc7677_example_with_a_wrong_signature_or_password() {
    let start = |password: &[u8]| {
        let nonce = ClientNonce::new("rOprNGfwEbeRWgbNEkqO").unwrap();
        let mut c = ScramClient::with_user("user", password, ScramBinding::Unsupported, nonce);
        c.server_first(
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        )
        .unwrap();
        c
    };
    // One bit off in the signature.
    let mut c = start(b"pencil");
    let e = c
        .server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G5=")
        .unwrap_err();
    assert!(matches!(e, Error::Auth(_)), "{e:?}");
    assert!(!c.is_finished());
    // The right signature for a client that used another password.
    let mut c = start(b"pencil2");
    assert!(c
        .server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
        .is_err());
    assert!(!c.is_finished());
}

/// An exchange recorded from PostgreSQL 15 (`fuzz/corpus/scram/scram-replication-exchange`,
/// role `repl_scram` of testenv), replayed with its client nonce: the user name is empty as
/// libpq sends it, and the server's signature verifies only if our client-first and
/// client-final were what the server saw.
#[test]
fn recorded_postgresql_exchange() {
    let nonce = ClientNonce::new("A0t9<2);Fp<KjJac^WE@(T$x").unwrap();
    let mut c = ScramClient::new(b"scram-secret", ScramBinding::Unsupported, nonce);
    assert_eq!(c.client_first(), b"n,,n=,r=A0t9<2);Fp<KjJac^WE@(T$x");
    let fin = c
        .server_first(
            b"r=A0t9<2);Fp<KjJac^WE@(T$x2ZR3UGk14FZw7OjHmFUaWlXX,s=j+2y9/HbGLrb/CBXK2rn4Q==,i=4096",
        )
        .unwrap();
    assert!(fin.starts_with(b"c=biws,r=A0t9<2);Fp<KjJac^WE@(T$x2ZR3UGk14FZw7OjHmFUaWlXX,p="));
    c.server_final(b"v=O/Rb1eyrgTDlsoTwcVL+lqYlzPXka/5Ar/zNDnjgC0A=")
        .unwrap();
    assert!(c.is_finished());
}

#[test]
fn channel_binding_data_goes_into_c() {
    let data = vec![0xAB; 32];
    let mut c = ScramClient::new(
        b"pw",
        ScramBinding::TlsServerEndPoint(data.clone()),
        ClientNonce::new("abc").unwrap(),
    );
    let fin = c.server_first(b"r=abcdef,s=c2FsdA==,i=1").unwrap().to_vec();
    let mut input = b"p=tls-server-end-point,,".to_vec();
    input.extend_from_slice(&data);
    let expected = format!("c={},r=abcdef,p=", BASE64.encode(&input));
    assert!(fin.starts_with(expected.as_bytes()));
    let mut y = ScramClient::new(
        b"pw",
        ScramBinding::Unrequested,
        ClientNonce::new("abc").unwrap(),
    );
    let fin = y.server_first(b"r=abcdef,s=c2FsdA==,i=1").unwrap();
    assert!(fin.starts_with(b"c=eSws,r=abcdef,p="));
}

#[test]
fn server_first_is_read_strictly() {
    for bad in [
        &b"r=abcdef,s=c2FsdA==,i=0"[..],
        b"r=abcdef,s=c2FsdA==,i=100001",
        b"r=abcdef,s=c2FsdA==,i=+5",
        b"r=abcdef,s=c2FsdA==,i=",
        b"r=abcdef,s=c2FsdA==,i=4096,x=1",
        b"m=x,r=abcdef,s=c2FsdA==,i=4096",
        b"r=abc def,s=c2FsdA==,i=4096",
        b"r=abcdef,s=not base64,i=4096",
        b"r=abcdef,i=4096,s=c2FsdA==",
        b"r=abcdef,s=c2FsdA==,i=4096\xff",
    ] {
        let mut c = ScramClient::new(
            b"pw",
            ScramBinding::Unsupported,
            ClientNonce::new("abc").unwrap(),
        );
        let e = c.server_first(bad).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("authentication failed: invalid SCRAM server-first message: "),
            "{:?}: {e}",
            String::from_utf8_lossy(bad)
        );
        // Once failed, stays failed.
        assert!(c.server_first(b"r=abcdef,s=c2FsdA==,i=1").is_err());
    }
    // The server's own error in server-final is an authentication failure.
    let mut c = ScramClient::new(
        b"pw",
        ScramBinding::Unsupported,
        ClientNonce::new("abc").unwrap(),
    );
    c.server_first(b"r=abcdef,s=c2FsdA==,i=1").unwrap();
    let e = c.server_final(b"e=invalid-proof").unwrap_err();
    assert!(e.to_string().contains("invalid-proof"), "{e}");
}

#[test]
fn nonces() {
    let n = ClientNonce::from_random([0xff; ClientNonce::RANDOM_BYTES]);
    assert_eq!(n.as_str(), "////////////////////////");
    assert_eq!(
        ClientNonce::from_random([0; ClientNonce::RANDOM_BYTES])
            .as_str()
            .len(),
        24
    );
    for bad in ["", "a,b", "a b", "é", "a\0"] {
        assert!(ClientNonce::new(bad).is_err(), "{bad:?}");
    }
    assert!(ClientNonce::new("!~+-").is_ok());
}

#[test]
fn user_names_are_escaped() {
    let c = ScramClient::with_user(
        "a=b,c",
        b"pw",
        ScramBinding::Unsupported,
        ClientNonce::new("n").unwrap(),
    );
    assert_eq!(c.client_first(), b"n,,n=a=3Db=2Cc,r=n");
}
