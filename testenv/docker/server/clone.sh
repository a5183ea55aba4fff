#!/usr/bin/env bash
# clone.sh SOURCE SLOT — replace this server's data directory with a base backup of the server
# SOURCE, taken through SOURCE's physical replication slot SLOT, and make it a standby of SOURCE
# (pg_basebackup -R writes standby.signal, primary_conninfo and primary_slot_name).
#
# Runs inside a PostgreSQL container whose own server is not running: from entrypoint.sh on an
# empty data directory, or from the host through `docker compose run --entrypoint /lab/clone.sh`.
# The backup goes to a directory beside PGDATA and replaces PGDATA only once it is complete, so
# a failed clone leaves the old data directory as it was.
#
# Environment: PGDATA, REPLICATOR_PASSWORD; LAB_SERVICE (this server's service name, its
# application_name in SOURCE's pg_stat_replication); CLONE_PORT (default 5432), CLONE_WAIT
# (seconds to wait for SOURCE to accept connections, default 300).
set -euo pipefail

usage="usage: clone.sh SOURCE SLOT"
source_host=${1:?$usage}
slot=${2:?$usage}
: "${PGDATA:?PGDATA is not set}"
port=${CLONE_PORT:-5432}
wait_secs=${CLONE_WAIT:-300}
staging="$PGDATA.clone"

say() { printf 'clone.sh: %s\n' "$*" >&2; }

# As root (the image's default user): make the parent directory the postgres user's, then do
# the rest as that user, as the image's entrypoint does.
if [ "$(id -u)" = 0 ]; then
    parent=$(dirname "$PGDATA")
    mkdir -p "$parent"
    chown postgres:postgres "$parent"
    exec gosu postgres "$0" "$@"
fi

if mountpoint -q "$PGDATA" 2>/dev/null; then
    say "PGDATA ($PGDATA) is a mount point; it must be a directory inside the volume"
    exit 1
fi

say "waiting for $source_host:$port to accept connections"
waited=0
until pg_isready -q -h "$source_host" -p "$port"; do
    if [ "$waited" -ge "$wait_secs" ]; then
        say "$source_host:$port did not accept connections within ${wait_secs}s"
        exit 1
    fi
    sleep 1
    waited=$((waited + 1))
done

rm -rf "$staging"
say "pg_basebackup from $source_host through slot $slot"
# -R copies the connection's settings into primary_conninfo, application_name included.
PGPASSWORD=${REPLICATOR_PASSWORD:?REPLICATOR_PASSWORD is not set} \
    pg_basebackup --dbname="application_name=${LAB_SERVICE:-walreceiver}" \
    --host="$source_host" --port="$port" --username=replicator --no-password \
    --pgdata="$staging" --write-recovery-conf --wal-method=stream --slot="$slot" \
    --checkpoint=fast --verbose

rm -rf "$PGDATA"
mv "$staging" "$PGDATA"
chmod 0700 "$PGDATA"
say "$PGDATA is now a standby of $source_host (slot $slot)"
