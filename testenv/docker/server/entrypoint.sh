#!/usr/bin/env bash
# Entrypoint of both PostgreSQL services (mounted at /lab). A server whose data directory is
# empty and whose environment names a CLONE_FROM service (postgres-standby) starts as a clone
# of it, made by clone.sh; then, and in every other case, the image's own entrypoint takes
# over: it runs initdb on an empty data directory (postgres-primary) and starts postgres as
# the postgres user. AUTO_CLONE=0 turns the cloning off (scripts/setup-replication.sh then
# does it).
set -euo pipefail

here=$(dirname "$0")

# A clone killed half-way (clone.sh's staging directory) belongs to no server: without this,
# initdb would find the directory not empty, and a server would carry it into its backups.
rm -rf "${PGDATA:?PGDATA is not set}/.clone"

if [ "${1:-}" = postgres ] \
    && [ ! -s "$PGDATA/PG_VERSION" ] \
    && [ -n "${CLONE_FROM:-}" ] \
    && [ "${AUTO_CLONE:-1}" = 1 ]; then
    "$here/clone.sh" "$CLONE_FROM" "${CLONE_SLOT:?CLONE_SLOT must name a slot on $CLONE_FROM}"
fi

exec docker-entrypoint.sh "$@"
