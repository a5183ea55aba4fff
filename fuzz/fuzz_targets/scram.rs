//! SCRAM-SHA-256 as the client runs it, fed whatever a server may send.
//!
//! Input: server-first, a NUL byte, server-final (the seeds are recorded exchanges). The
//! client's nonce is a fixed one of 24 characters, so a recorded server-first starting `r=`
//! gets the first 24 characters after it (the recorded client nonce) replaced by ours: the
//! exchange then gets past the nonce check into salt, iteration count and proof. Checks: no panic, and authentication
//! never completes (a server-final that verifies needs the password, which the input lacks),
//! through `ScramClient` and through the `Authenticator` the connection uses.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use pgwire_repl::auth::{AuthStep, Authenticator, ClientNonce, ScramBinding, ScramClient};
use pgwire_repl::protocol::backend::Authentication;

const NONCE_LEN: usize = 24;

fn nonce() -> ClientNonce {
    ClientNonce::from_random([0x5a; ClientNonce::RANDOM_BYTES])
}

/// The server-first to use: the input with our nonce spliced in where a recorded one was.
fn with_our_nonce(first: &[u8], client_first: &[u8]) -> Vec<u8> {
    let ours = client_first
        .windows(2)
        .position(|w| w == b"r=")
        .map(|i| &client_first[i + 2..])
        .expect("client-first has a nonce");
    match first.strip_prefix(b"r=") {
        Some(rest) if rest.len() >= NONCE_LEN => [b"r=", ours, &rest[NONCE_LEN..]].concat(),
        _ => first.to_vec(),
    }
}

/// PBKDF2 runs the iteration count the server names (up to the library's cap of 100 000):
/// above PostgreSQL's default the fuzzer would spend its time hashing.
fn too_slow(first: &[u8]) -> bool {
    let Some(i) = first.windows(3).position(|w| w == b",i=") else {
        return false;
    };
    let digits: Vec<u8> = first[i + 3..]
        .iter()
        .copied()
        .take_while(u8::is_ascii_digit)
        .collect();
    let n = std::str::from_utf8(&digits)
        .ok()
        .and_then(|d| d.parse::<u64>().ok())
        .unwrap_or(u64::MAX);
    (4097..=100_000).contains(&n)
}

fuzz_target!(|data: &[u8]| {
    let (first, last) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };

    let mut client = ScramClient::new(b"pencil", ScramBinding::Unsupported, nonce());
    let first_msg = with_our_nonce(first, client.client_first());
    if too_slow(&first_msg) {
        return;
    }
    if let Ok(reply) = client.server_first(&first_msg) {
        assert!(
            reply.starts_with(b"c=biws,r="),
            "{:?}",
            String::from_utf8_lossy(reply)
        );
        // Out of order: a second server-first is refused.
        assert!(client.server_first(&first_msg).is_err());
    }
    if let Some(last) = last {
        assert!(client.server_final(last).is_err());
    }
    assert!(!client.is_finished());

    // The same through the Authenticator, ending with the server's AuthenticationOk.
    let mut auth = Authenticator::new("alice", Some("pencil"), nonce());
    let mut out = BytesMut::new();
    let offer = Authentication::Sasl(vec!["SCRAM-SHA-256".to_owned()]);
    assert_eq!(auth.handle(offer, &mut out).ok(), Some(AuthStep::Continue));
    let first_msg = with_our_nonce(first, &out);
    let cont = Authentication::SaslContinue(Bytes::from(first_msg));
    if auth.handle(cont, &mut out).is_ok() {
        if let Some(last) = last {
            let fin = Authentication::SaslFinal(Bytes::copy_from_slice(last));
            assert!(auth.handle(fin, &mut out).is_err());
        }
    }
    assert!(auth.handle(Authentication::Ok, &mut out).is_err());
});
