#!/usr/bin/env bash
# clone.sh SOURCE SLOT — make this server's data directory a base backup of the server SOURCE,
# taken through SOURCE's physical replication slot SLOT, and make it a standby of SOURCE
# (pg_basebackup -R writes standby.signal, primary_conninfo and primary_slot_name).
#
# Runs inside a PostgreSQL container whose own server is not running: from entrypoint.sh on an
# empty data directory, or from the host through `docker compose run --entrypoint /lab/clone.sh`.
# PGDATA is the volume's mount point (/var/lib/postgresql/data, the seed guide's path), which
# cannot be removed or renamed: the backup goes to a staging directory inside it, .clone,
# and only once the backup is complete is the old content removed and the backup's moved up in
# its place. A failed backup leaves the old data directory as it was (and no staging directory).
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
# entrypoint.sh removes a staging directory left by a clone that was killed.
staging_name=.clone
staging="$PGDATA/$staging_name"

say() { printf 'clone.sh: %s\n' "$*" >&2; }

# As root (the image's default user): make the data directory the postgres user's (a new volume
# whose mount point the image does not have, as /var/lib/postgresql/data in 18+ images, starts
# out root's), then do the rest as that user, as the image's entrypoint does.
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA"
    chown postgres:postgres "$PGDATA"
    chmod 0700 "$PGDATA"
    exec gosu postgres "$0" "$@"
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
trap 'rm -rf "$staging"' EXIT
say "pg_basebackup from $source_host through slot $slot"
# -R copies the connection's settings into primary_conninfo, application_name included.
PGPASSWORD=${REPLICATOR_PASSWORD:?REPLICATOR_PASSWORD is not set} \
    pg_basebackup --dbname="application_name=${LAB_SERVICE:-walreceiver}" \
    --host="$source_host" --port="$port" --username=replicator --no-password \
    --pgdata="$staging" --write-recovery-conf --wal-method=stream --slot="$slot" \
    --checkpoint=fast --verbose

# The directory's contents, not the directory: it is the volume's mount point.
find "$PGDATA" -mindepth 1 -maxdepth 1 ! -name "$staging_name" -exec rm -rf {} +
find "$staging" -mindepth 1 -maxdepth 1 -exec mv -t "$PGDATA" {} +
# pg_basebackup gave the copy the source's mode (0700, or 0750 with group access).
mode=$(stat -c %a "$staging")
rmdir "$staging"
chmod "$mode" "$PGDATA"
say "$PGDATA is now a standby of $source_host (slot $slot)"
