//! Writes the `wal_decoder` fuzz target's seeds: WAL of each version from
//! [`synthetic_wal`], a few pages each, with the control byte the target reads first.
//!
//! ```sh
//! cargo run -p pgwire-repl-benches --bin wal_fuzz_seeds -- fuzz/corpus/wal_decoder
//! ```
//!
//! Each seed starts at a segment's first page (long header) or at a later page, with and
//! without zeros after it (the end of WAL), so that the fuzzer begins past the page checks.

use std::path::PathBuf;

use pgwire_repl::{Lsn, WalSegmentSize};
use pgwire_repl_benches::synthetic_wal;

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/corpus/wal_decoder".into()),
    );
    std::fs::create_dir_all(&dir)?;
    let seg = WalSegmentSize::new(1 << 20).expect("1 MiB");
    for major in 13..=18 {
        let start = Lsn(3 << 20);
        let wal = synthetic_wal(major, seg, start, 64 << 10);
        // ctl: piece size selector 5, start from the first page's pageaddr.
        let mut first = vec![5u8];
        first.extend_from_slice(&wal[..2 * 8192]);
        std::fs::write(dir.join(format!("pg{major}-segment-start")), &first)?;
        // From the fifth page on: a continued record to skip, then records, then zeros.
        let mut later = vec![0x13u8];
        later.extend_from_slice(&wal[4 * 8192..5 * 8192]);
        later.extend_from_slice(&[0; 64]);
        std::fs::write(dir.join(format!("pg{major}-mid-segment-end")), &later)?;
    }
    println!("seeds in {}", dir.display());
    Ok(())
}
