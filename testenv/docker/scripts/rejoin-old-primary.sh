#!/usr/bin/env bash
# rejoin-old-primary.sh — after promote-standby.sh, turn the old primary into a standby of the
# new one.
#
# By default its data directory is replaced by a new base backup of the new primary
# (server/clone.sh: pg_basebackup -R -X stream through a slot created here on the new primary:
# primary_slot for postgres-primary, standby_slot for postgres-standby). Nothing of the old timeline survives, whatever happened before the failure.
#
# --rewind uses pg_rewind instead (server/rewind.sh): only the blocks changed since the
# timelines forked are copied, which is what makes it fast on a large database. It needs
# wal_log_hints=on or data checksums (docker-compose.yml sets wal_log_hints) and connects as
# the superuser; if it fails (for instance the new primary no longer has the WAL back to the
# fork), run again without --rewind.
#
# Usage: testenv/docker/scripts/rejoin-old-primary.sh [--rewind] [OLD]
#   OLD: the service that was primary (default postgres-primary; the other one must be the
#   primary now).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"

method=clone
entry=/lab/clone.sh
old=postgres-primary
for arg in "$@"; do
    case "$arg" in
        --rewind)
            method=rewind
            entry=/lab/rewind.sh
            ;;
        postgres-primary | postgres-standby) old=$arg ;;
        *) die "usage: rejoin-old-primary.sh [--rewind] [postgres-primary|postgres-standby]" ;;
    esac
done
new=$(peer_of "$old")
slot=$(slot_of "$old")

is_running "$new" || die "$new is not running"
in_recovery "$new" && die "$new is not a primary; run promote-standby.sh first"

if is_running "$old"; then
    if in_recovery "$old"; then
        die "$old is already a standby"
    fi
    say "$old is running as a second primary: stopping it"
fi
compose stop "$old"

say "slot $slot on $new"
recreate_slot "$new" "$slot"

say "rebuilding $old from $new ($method)"
compose run --rm --no-deps -T --entrypoint "$entry" "$old" "$new" "$slot"

say "starting $old as a standby of $new"
compose up -d --no-deps "$old"
wait_ready "$old" 300
in_recovery "$old" || die "$old started but is not in recovery"
wait_slot_active "$new" "$slot"

say "$old streams from $new:"
sql "$new" -c "SELECT application_name, client_addr, state, sync_state, replay_lsn
               FROM pg_stat_replication"
