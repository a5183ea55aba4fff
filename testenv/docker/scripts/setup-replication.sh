#!/usr/bin/env bash
# setup-replication.sh — make the standby service a fresh clone of the primary service, by hand.
#
# For a lab started without the automatic clone (STANDBY_AUTO_CLONE=0 docker compose up -d,
# where the standby initialises a server of its own), or to rebuild a standby that fell too far
# behind. Needs the primary running as a primary. It:
#   1. makes sure the replicator role and the archiver's slot exist on the primary;
#   2. stops the standby and (re)creates its slot, standby_slot, on the primary;
#   3. replaces the standby's data directory with pg_basebackup -R -X stream -S standby_slot
#      (server/clone.sh, in a one-off container on the standby's volume);
#   4. starts the standby and waits until it streams from the primary.
#
# Usage: testenv/docker/scripts/setup-replication.sh
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"

[ "$#" -eq 0 ] || die "usage: setup-replication.sh (no arguments)"

is_running primary || die "the primary service is not running (docker compose up -d primary)"
in_recovery primary && die "the primary service is a standby; this script clones standby from primary"

say "replicator role on primary"
if [ "$(sql_value primary "SELECT count(*) FROM pg_roles WHERE rolname = 'replicator'")" = 0 ]; then
    # The password the servers were started with, read from the container, never from argv.
    password=$(compose exec -T primary printenv REPLICATOR_PASSWORD)
    sql primary -v pw="$password" <<'SQL'
SET password_encryption = 'scram-sha-256';
CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD :'pw';
SQL
    say "created"
else
    say "exists"
fi
ensure_slot primary archiver_slot

say "stopping standby"
compose stop standby

say "recreating standby_slot on primary"
recreate_slot primary standby_slot

say "cloning primary into standby's volume"
compose run --rm --no-deps -T --entrypoint /lab/clone.sh standby primary standby_slot

say "starting standby"
compose up -d --no-deps standby
wait_ready standby 300
in_recovery standby || die "standby started but is not in recovery"
wait_slot_active primary standby_slot

say "standby streams from primary:"
sql primary -c "SELECT application_name, client_addr, state, sync_state, replay_lsn
                FROM pg_stat_replication"
