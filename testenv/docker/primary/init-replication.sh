#!/usr/bin/env bash
# /docker-entrypoint-initdb.d/20-replication.sh on the primary: runs once, when the data
# directory is first initialised, while the image's entrypoint has a socket-only server up.
# Does what the seed guide's "Configure Replication" does by hand on the primary, and a little
# more: creates the replicator role (REPLICATION LOGIN, SCRAM-SHA-256 password
# REPLICATOR_PASSWORD, by default the guide's replicator_password), grants it pg_monitor (so the
# guide's monitoring queries and `pgwal-recv status` see every column of pg_stat_replication
# and the slots when run as replicator), and creates the physical slots that keep WAL for
# postgres-standby (the guide's standby_slot) and the archiver (archiver_slot) from now on,
# before either has connected.
#
# docker-entrypoint.sh executes this file when it has the execute bit and sources it
# otherwise, so the work runs in a subshell: either way the entrypoint's shell is left as it was.
(
    set -euo pipefail
    : "${REPLICATOR_PASSWORD:?REPLICATOR_PASSWORD must be set}"

    # The password goes in as a psql variable, quoted by psql (:'...'), never pasted into SQL.
    psql -X -q -v ON_ERROR_STOP=1 --no-password \
        --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
        -v replicator_password="$REPLICATOR_PASSWORD" <<'SQL'
SET password_encryption = 'scram-sha-256';
CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD :'replicator_password';
GRANT pg_monitor TO replicator;
SELECT pg_create_physical_replication_slot('standby_slot', true);
SELECT pg_create_physical_replication_slot('archiver_slot', true);
SQL
    echo "init-replication: role replicator (pg_monitor), slots standby_slot and archiver_slot"
)
