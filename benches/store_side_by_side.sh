#!/usr/bin/env bash
# pgwal-recv archiving to an object store (a Garage node on loopback) beside archiving to a
# local directory, the same WAL, alternating, several rounds; prints markdown tables of
# medians and ratios. Not a test: run it by hand on a quiet machine. Needs the garage program
# (see testenv::GARAGE_INSTALL). Arguments go to the program (--rounds N, --wal-mb N,
# --jobs 2,4, --sync no|yes|both, --garage fresh|shared).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p pgwal-recv -p pgwire-repl-benches
exec target/release/store_side_by_side --pgwal-recv "$PWD/target/release/pgwal-recv" "$@"
