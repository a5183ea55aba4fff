#!/usr/bin/env bash
# setup-replication.sh — make postgres-standby a fresh clone of postgres-primary, by hand.
#
# For a lab started without the automatic clone (STANDBY_AUTO_CLONE=0 docker compose up -d,
# where the standby initialises a server of its own), or to rebuild a standby that fell too far
# behind. Needs postgres-primary running as a primary. It:
#   1. makes sure the replicator role (with pg_monitor) and the archiver's slot exist on
#      postgres-primary;
#   2. stops postgres-standby and (re)creates its slot, standby_slot, on postgres-primary;
#   3. replaces postgres-standby's data directory with pg_basebackup -R -X stream -S standby_slot
#      (server/clone.sh, in a one-off container on postgres-standby's volume);
#   4. starts postgres-standby and waits until it streams from postgres-primary.
#
# Usage: testenv/docker/scripts/setup-replication.sh
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"

[ "$#" -eq 0 ] || die "usage: setup-replication.sh (no arguments)"

is_running postgres-primary || die "postgres-primary is not running (docker compose up -d postgres-primary)"
in_recovery postgres-primary && die "postgres-primary is in recovery; this script clones postgres-standby from a primary"

say "replicator role on postgres-primary"
if [ "$(sql_value postgres-primary "SELECT count(*) FROM pg_roles WHERE rolname = 'replicator'")" = 0 ]; then
    # The password the servers were started with, read from the container, never from argv.
    password=$(compose exec -T postgres-primary printenv REPLICATOR_PASSWORD)
    sql postgres-primary -v pw="$password" <<'SQL'
SET password_encryption = 'scram-sha-256';
CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD :'pw';
SQL
    say "created"
else
    say "exists"
fi
sql postgres-primary <<'SQL'
SET client_min_messages = warning;
GRANT pg_monitor TO replicator;
SQL
ensure_slot postgres-primary archiver_slot

say "stopping postgres-standby"
compose stop postgres-standby

say "recreating standby_slot on postgres-primary"
recreate_slot postgres-primary standby_slot

say "cloning postgres-primary into postgres-standby's volume"
compose run --rm --no-deps -T --entrypoint /lab/clone.sh postgres-standby postgres-primary standby_slot

say "starting postgres-standby"
compose up -d --no-deps postgres-standby
wait_ready postgres-standby 300
in_recovery postgres-standby || die "postgres-standby started but is not in recovery"
wait_slot_active postgres-primary standby_slot

say "postgres-standby streams from postgres-primary:"
sql postgres-primary -c "SELECT application_name, client_addr, state, sync_state, replay_lsn
                         FROM pg_stat_replication"
