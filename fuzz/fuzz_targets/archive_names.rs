//! The archive directory's file names: `WalSegmentSize::parse_file_name` and
//! `pgwal_recv::archive::names::is_segment_file_name`.
//!
//! Checks, for 1 MiB, 16 MiB and 1 GiB segments: both agree with a plainly written rule
//! (the fuzz crate's `segment_name`), and a name that parses is exactly the name built back
//! from its parts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgwal_recv::archive::names::is_segment_file_name;
use pgwire_repl::WalSegmentSize;
use pgwire_repl_fuzz::{method_ext, segment_name};

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    for shift in [20, 24, 30] {
        let seg = WalSegmentSize::new(1 << shift).expect("a valid size");
        let got = is_segment_file_name(name, seg)
            .map(|(tli, segno, m, partial)| (tli.0, segno, method_ext(m), partial));
        assert_eq!(got, segment_name(name, seg.bytes()), "{name:?}");
        if let Some((tli, segno, ext, partial)) = got {
            let suffix = if partial { ".partial" } else { "" };
            let built = seg.file_name(pgwire_repl::TimelineId(tli), segno);
            assert_eq!(format!("{built}{ext}{suffix}"), name);
        }
        if let Some((tli, segno)) = seg.parse_file_name(name) {
            assert_eq!(seg.file_name(tli, segno), name);
        }
    }
});
