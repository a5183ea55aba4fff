#!/usr/bin/env bash
# monitor.sh — the state of replication in the lab, whichever server is the primary now.
#
# First what the seed guide's scripts/monitor.sh shows, its two queries as it gives them:
#   === PRIMARY STATUS ===  client_addr, state, sent/write/replay LSN, sync_state from
#                           pg_stat_replication, on the server that is primary now;
#   === STANDBY STATUS ===  pg_is_in_recovery(), the receive and replay LSNs, on the standby.
# (The guide runs them on postgres-primary and postgres-standby by name; after a failover the
# roles are swapped, so here each runs on the server that has the role.)
#
# Then the details, for each running PostgreSQL service, by its role:
#   primary: pg_stat_replication (each standby and pgwal-recv: state, sent/write/flush/replay
#            LSN, how many bytes each is behind pg_current_wal_lsn(), and the lag times), and
#            pg_replication_slots (active, restart_lsn, WAL each slot holds back, wal_status);
#   standby: pg_is_in_recovery(), pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn(), replay
#            lag in bytes (received but not replayed, and behind the primary's current LSN)
#            and in time, and pg_stat_wal_receiver (its upstream and slot).
# Then the archiver container's state and the newest files in its archive.
#
# Usage: testenv/docker/scripts/monitor.sh [-w SECONDS]   (-w: repeat every SECONDS)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "$0")/lib.sh"

interval=
case "${1:-}" in
    "") ;;
    -w) interval=${2:?usage: monitor.sh [-w SECONDS]} ;;
    *) die "usage: monitor.sh [-w SECONDS]" ;;
esac

show_primary() {
    local service=$1
    say "$service: primary, current WAL position $(sql_value "$service" 'SELECT pg_current_wal_lsn()')"
    sql "$service" -c "
        SELECT application_name, client_addr, state, sync_state,
               sent_lsn, write_lsn, flush_lsn, replay_lsn,
               pg_wal_lsn_diff(pg_current_wal_lsn(), sent_lsn)   AS send_lag_bytes,
               pg_wal_lsn_diff(pg_current_wal_lsn(), flush_lsn)  AS flush_lag_bytes,
               pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) AS replay_lag_bytes,
               write_lag, flush_lag, replay_lag
        FROM pg_stat_replication
        ORDER BY application_name"
    sql "$service" -c "
        SELECT slot_name, slot_type, active, active_pid, restart_lsn,
               pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)) AS wal_held,
               wal_status
        FROM pg_replication_slots
        ORDER BY slot_name"
}

# show_standby SERVICE [PRIMARY_LSN]
show_standby() {
    local service=$1 primary_lsn=${2:-}
    say "$service: standby"
    sql "$service" -v primary_lsn="$primary_lsn" <<'SQL'
SELECT pg_is_in_recovery()       AS in_recovery,
       pg_last_wal_receive_lsn() AS receive_lsn,
       pg_last_wal_replay_lsn()  AS replay_lsn,
       pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())
                                 AS replay_behind_receive_bytes,
       pg_wal_lsn_diff(NULLIF(:'primary_lsn', '')::pg_lsn, pg_last_wal_replay_lsn())
                                 AS replay_behind_primary_bytes,
       -- Time since the last replayed commit; 0 when everything received is replayed
       -- (an idle primary sends no commits to measure by).
       CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN interval '0'
            ELSE now() - pg_last_xact_replay_timestamp() END
                                 AS replay_lag,
       pg_last_xact_replay_timestamp() AS last_replayed_commit;
SELECT status, sender_host, sender_port, slot_name, written_lsn, flushed_lsn,
       latest_end_lsn, last_msg_receipt_time
FROM pg_stat_wal_receiver;
SQL
}

show_archiver() {
    if ! is_running archiver; then
        say "archiver: not running"
        return
    fi
    say "archiver: running; newest files in /archive"
    compose exec -T archiver sh -c 'ls -lt /archive | head -n 6'
}

# The seed guide's monitor.sh queries, word for word.
GUIDE_PRIMARY_SQL="SELECT client_addr, state, sent_lsn, write_lsn, replay_lsn, sync_state FROM pg_stat_replication;"
GUIDE_STANDBY_SQL="SELECT pg_is_in_recovery() AS in_recovery, pg_last_wal_receive_lsn() AS receive_lsn, pg_last_wal_replay_lsn() AS replay_lsn;"

# guide_section TITLE SQL SERVICE...: the guide's header and its query on each SERVICE.
guide_section() {
    local title=$1 query=$2 service
    shift 2
    echo "=== $title ==="
    [ "$#" -gt 0 ] || echo "(none running)"
    for service in "$@"; do
        [ "$#" -eq 1 ] || echo "-- $service"
        sql "$service" -c "$query"
    done
}

report() {
    local service primary_lsn='' primaries=() standbys=() stopped=()
    for service in postgres-primary postgres-standby; do
        if ! is_running "$service"; then
            stopped+=("$service")
        elif in_recovery "$service"; then
            standbys+=("$service")
        else
            primaries+=("$service")
        fi
    done
    # ${a[@]+"${a[@]}"}: an empty array under set -u in bash before 4.4 (macOS's /bin/bash).
    guide_section "PRIMARY STATUS" "$GUIDE_PRIMARY_SQL" ${primaries[@]+"${primaries[@]}"}
    echo
    guide_section "STANDBY STATUS" "$GUIDE_STANDBY_SQL" ${standbys[@]+"${standbys[@]}"}
    echo

    for service in ${stopped[@]+"${stopped[@]}"}; do
        say "$service: not running"
    done
    [ "${#primaries[@]}" -le 1 ] || say "WARNING: both servers are primaries (split brain)"
    for service in ${primaries[@]+"${primaries[@]}"}; do
        show_primary "$service"
        primary_lsn=$(sql_value "$service" 'SELECT pg_current_wal_lsn()')
    done
    for service in ${standbys[@]+"${standbys[@]}"}; do
        show_standby "$service" "$primary_lsn"
    done
    show_archiver
}

if [ -z "$interval" ]; then
    report
else
    while true; do
        clear
        date
        report
        sleep "$interval"
    done
fi
