//! Timeline history files, as `TIMELINE_HISTORY` returns them.
//!
//! Checks: no panic; the entries of a file that parses have increasing timelines, and
//! written back in the server's format (`tli<TAB>X/Y<TAB>reason`) parse to the same entries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgwire_repl::protocol::command::parse_history;

fuzz_target!(|data: &[u8]| {
    let Ok(entries) = parse_history(data) else {
        return;
    };
    assert!(entries.windows(2).all(|w| w[0].timeline < w[1].timeline));
    let text: String = entries
        .iter()
        .map(|e| format!("{}\t{}\t{}\n", e.timeline, e.switchpoint, e.reason))
        .collect();
    assert_eq!(
        parse_history(text.as_bytes()).ok().as_ref(),
        Some(&entries),
        "{text:?}"
    );
});
