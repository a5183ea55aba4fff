#!/usr/bin/env bash
# pgwal-recv restore beside cp and zstd -d, one segment per process, and recoveries of the
# same archive by a real server through each (cp, restore, restore --prefetch); prints
# markdown tables of medians and ratios. Not a test: run it by hand on a quiet machine.
# Arguments go to the program (--rounds N, --wal-mb N, --prefetch N, --only segments).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p pgwal-recv -p pgwire-repl-benches
exec target/release/restore_side_by_side --pgwal-recv "$PWD/target/release/pgwal-recv" "$@"
