#!/usr/bin/env bash
# promote-standby.sh — fail over: stop the primary as in a failure and promote the standby.
#
#   1. stops the primary service (docker compose stop: a clean shutdown, whose last WAL reaches
#      the standby; --crash: docker compose kill, SIGKILL, as a machine would die);
#   2. promotes the standby (SELECT pg_promote()) and checks it now takes writes: out of
#      recovery, and an INSERT into users succeeds;
#   3. makes sure the archiver's slot exists on the new primary, records ARCHIVER_HOST=SERVICE
#      in the .env file beside docker-compose.yml and, if the archiver runs, recreates it to
#      stream from the new primary; pgwal-recv goes on from its newest segment and follows the
#      timeline switch. WAL the new primary no longer held by then is missing from the archive.
#
# Usage: testenv/docker/scripts/promote-standby.sh [--crash] [SERVICE]
#   SERVICE: the standby to promote (default postgres-standby; after a rejoin the roles are
#   swapped, and promote-standby.sh postgres-primary fails back).
#
# Afterwards, run rejoin-old-primary.sh before any plain `docker compose up`: that would start
# the old primary again as a second primary.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"

crash=0
new=postgres-standby
for arg in "$@"; do
    case "$arg" in
        --crash) crash=1 ;;
        postgres-primary | postgres-standby) new=$arg ;;
        *) die "usage: promote-standby.sh [--crash] [postgres-primary|postgres-standby]" ;;
    esac
done
old=$(peer_of "$new")

is_running "$new" || die "$new is not running"
in_recovery "$new" || die "$new is already a primary"

if [ "$crash" = 1 ]; then
    say "killing $old (SIGKILL, as in a crash)"
    compose kill -s SIGKILL "$old"
else
    say "stopping $old (as in a failure)"
    compose stop "$old"
fi

say "promoting $new"
[ "$(sql_value "$new" 'SELECT pg_promote(true, 60)')" = t ] || die "pg_promote() on $new did not finish"
in_recovery "$new" && die "$new is still in recovery after pg_promote()"

say "checking that $new takes writes"
# As the guide's after_failover row, with the time added: usernames are unique, and a lab can
# fail over more than once.
sql "$new" -c "INSERT INTO users (username, email)
               VALUES ('after_failover_' || to_char(clock_timestamp(), 'YYYYMMDD_HH24MISS_US'),
                       'failover@example.com')
               RETURNING id, username, created_at"
# The WAL file name starts with the timeline, one more than before the promotion.
sql "$new" -c "SELECT pg_is_in_recovery(), pg_current_wal_lsn(),
                      pg_walfile_name(pg_current_wal_lsn()) AS current_wal_file"

say "archiver_slot on $new"
ensure_slot "$new" archiver_slot
set_lab_env ARCHIVER_HOST "$new"
if is_running archiver; then
    say "archiver: recreated to stream from $new (ARCHIVER_HOST=$new in $LAB_DIR/.env)"
    ARCHIVER_HOST=$new compose up -d --no-deps archiver
else
    say "archiver: not running; it will stream from $new when started (ARCHIVER_HOST=$new in $LAB_DIR/.env)"
fi

say "$new is the primary; bring $old back as its standby with: $(dirname "$0")/rejoin-old-primary.sh $old"
