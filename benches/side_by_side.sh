#!/usr/bin/env bash
# Side by side: pgwal-recv and PostgreSQL's pg_receivewal on the same server, alternating,
# several rounds; prints a markdown table of medians and ratios. Not a test: run it by hand
# on a quiet machine. Arguments go to the program (--rounds N, --wal-mb N, --pgbench-secs N).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p pgwal-recv -p pgwire-repl-benches
exec target/release/side_by_side --pgwal-recv "$PWD/target/release/pgwal-recv" "$@"
