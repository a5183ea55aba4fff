#!/usr/bin/env bash
# pgwal-recv basebackup beside pg_basebackup on the same server (plain and tar, -X stream),
# alternating; prints a markdown table of medians and ratios. Not a test: run it by hand on
# a quiet machine. Arguments go to the program (--rounds N, --size-mb N).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p pgwal-recv -p pgwire-repl-benches
exec target/release/basebackup_side_by_side --pgwal-recv "$PWD/target/release/pgwal-recv" "$@"
