#!/usr/bin/env bash
# rewind.sh SOURCE SLOT — turn this server, a former primary that is shut down, into a standby
# of SOURCE (the server promoted in its place) with pg_rewind instead of a new base backup:
# only the blocks that changed since the timelines diverged are copied. Needs wal_log_hints=on
# (docker-compose.yml sets it) or data checksums on this server.
#
# pg_rewind connects to SOURCE as the superuser over SQL (POSTGRES_USER, POSTGRES_PASSWORD),
# not as the replicator: it reads SOURCE's files through pg_ls_dir, pg_stat_file and
# pg_read_binary_file, which the replicator may not call. The standby settings are then written
# for the replicator and SLOT, as pg_basebackup -R would.
# A server that was not shut down cleanly is first recovered in single-user mode.
#
# Runs inside the container, from the host through
# `docker compose run --entrypoint /lab/rewind.sh`. Environment: PGDATA, POSTGRES_USER,
# POSTGRES_PASSWORD, POSTGRES_DB, REPLICATOR_PASSWORD; LAB_SERVICE (application_name);
# CLONE_PORT (default 5432).
set -euo pipefail

usage="usage: rewind.sh SOURCE SLOT"
source_host=${1:?$usage}
slot=${2:?$usage}
: "${PGDATA:?PGDATA is not set}"
: "${REPLICATOR_PASSWORD:?REPLICATOR_PASSWORD is not set}"
port=${CLONE_PORT:-5432}

say() { printf 'rewind.sh: %s\n' "$*" >&2; }

if [ "$(id -u)" = 0 ]; then
    exec gosu postgres "$0" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    say "$PGDATA holds no data directory to rewind; use clone.sh"
    exit 1
fi

# A libpq connection-string value: quoted, with \ and ' escaped.
conninfo_value() {
    local v=${1//\\/\\\\}
    printf "'%s'" "${v//\'/\\\'}"
}
# A postgresql.conf string: quoted, with ' doubled and \ doubled (the file's parser reads
# backslash escapes), as pg_basebackup -R writes it.
conf_string() {
    local v=${1//\\/\\\\}
    printf "'%s'" "${v//\'/\'\'}"
}

# pg_rewind would recover a server that was not shut down cleanly by itself, but in single-user
# mode without this lab's command-line settings, which would record wal_log_hints=off in
# pg_control and make pg_rewind refuse the server. Recover it here with the setting on.
state=$(LC_ALL=C pg_controldata "$PGDATA" | sed -n 's/^Database cluster state: *//p')
case "$state" in
    "shut down" | "shut down in recovery") ;;
    "in archive recovery")
        # Left by an earlier rewind whose server never started, or a standby's: single-user
        # mode cannot finish a standby's recovery.
        say "cluster state is \"$state\", not a former primary's; rejoin without --rewind"
        exit 1
        ;;
    *)
        say "cluster state is \"$state\": crash recovery in single-user mode first"
        postgres --single -D "$PGDATA" -c wal_log_hints=on template1 </dev/null >/dev/null
        ;;
esac

say "pg_rewind from $source_host"
PGPASSWORD=${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is not set} \
    pg_rewind --target-pgdata="$PGDATA" --progress \
    --source-server="host=$source_host port=$port user=${POSTGRES_USER:-postgres} dbname=${POSTGRES_DB:-postgres}"

conninfo="host=$source_host port=$port user=replicator password=$(conninfo_value "$REPLICATOR_PASSWORD")"
conninfo+=" application_name=$(conninfo_value "${LAB_SERVICE:-walreceiver}")"
# pg_rewind copied SOURCE's postgresql.auto.conf; settings appended last win.
{
    printf '# written by rewind.sh\n'
    printf 'primary_conninfo = %s\n' "$(conf_string "$conninfo")"
    printf 'primary_slot_name = %s\n' "$(conf_string "$slot")"
} >>"$PGDATA/postgresql.auto.conf"
touch "$PGDATA/standby.signal"
say "$PGDATA is now a standby of $source_host (slot $slot)"
