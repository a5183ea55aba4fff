#!/usr/bin/env bash
# pgwal-recv verify beside pg_waldump --quiet (uncompressed archive) and zstd -d (the same
# WAL archived with -Z zstd), alternating, page cache warm; prints a markdown table of
# medians and ratios. Not a test: run it by hand on a quiet machine. Arguments go to the
# program (--rounds N, --wal-mb N).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p pgwal-recv -p pgwire-repl-benches
exec target/release/verify_side_by_side --pgwal-recv "$PWD/target/release/pgwal-recv" "$@"
