//! Connection URIs: the input is what follows `postgresql://`.
//!
//! Checks: no panic; a URI that parses gives the same `Config` once written back as a
//! percent-encoded URI and as a key=value string.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgwire_repl::Config;
use pgwire_repl_fuzz::{to_conninfo, to_uri};

fuzz_target!(|data: &[u8]| {
    let Ok(rest) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::parse(&format!("postgresql://{rest}")) else {
        return;
    };
    if let Some(uri) = to_uri(&config) {
        assert_eq!(Config::parse(&uri).ok().as_ref(), Some(&config), "{uri:?}");
    }
    let text = to_conninfo(&config);
    assert_eq!(
        Config::parse(&text).ok().as_ref(),
        Some(&config),
        "{text:?}"
    );
});
