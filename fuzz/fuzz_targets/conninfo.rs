//! libpq `key=value` connection strings.
//!
//! Checks: no panic; a string that parses gives the same `Config` once written back as a
//! quoted key=value string and as a percent-encoded URI.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgwire_repl::Config;
use pgwire_repl_fuzz::{to_conninfo, to_uri};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::parse(s) else {
        return;
    };
    let text = to_conninfo(&config);
    assert_eq!(
        Config::parse(&text).ok().as_ref(),
        Some(&config),
        "{text:?}"
    );
    if let Some(uri) = to_uri(&config) {
        assert_eq!(Config::parse(&uri).ok().as_ref(), Some(&config), "{uri:?}");
    }
});
