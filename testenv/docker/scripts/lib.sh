# shellcheck shell=bash
# Sourced by the scripts beside it: how they reach the lab's services from the host.
#
# DOCKER_COMPOSE overrides the compose command (default "docker compose"; "docker-compose" for
# Compose v2 installed as a standalone binary). LAB_DB is the database the scripts use (default
# postgres, as POSTGRES_DB in docker-compose.yml and the seed guide's commands).

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB_DB=${LAB_DB:-postgres}
read -r -a COMPOSE_CMD <<<"${DOCKER_COMPOSE:-docker compose}"

compose() {
    "${COMPOSE_CMD[@]}" --project-directory "$LAB_DIR" -f "$LAB_DIR/docker-compose.yml" "$@"
}

say() { printf '==> %s\n' "$*"; }
die() {
    printf '%s: %s\n' "$(basename "$0")" "$*" >&2
    exit 1
}

# The other PostgreSQL service. The two have the seed guide's names (services and containers
# alike); either can be the primary after a failover, and the names stay.
peer_of() {
    case "$1" in
        postgres-primary) echo postgres-standby ;;
        postgres-standby) echo postgres-primary ;;
        *) die "unknown service \"$1\" (postgres-primary or postgres-standby)" ;;
    esac
}

# The slot a service streams through when it is the standby: the guide's standby_slot for
# postgres-standby, primary_slot for postgres-primary after a rejoin (slot names allow only
# lower-case letters, digits and underscores, so the service name cannot be used as it is).
slot_of() {
    case "$1" in
        postgres-primary) echo primary_slot ;;
        postgres-standby) echo standby_slot ;;
        *) die "unknown service \"$1\" (postgres-primary or postgres-standby)" ;;
    esac
}

is_running() {
    [ -n "$(compose ps --status running --quiet "$1" 2>/dev/null)" ]
}

# psql as the superuser over the container's own socket (pg_hba.conf: local trust). Extra
# arguments go to psql; a script can come on stdin.
sql() {
    local service=$1
    shift
    compose exec -T -u postgres "$service" psql -X -q -v ON_ERROR_STOP=1 -d "$LAB_DB" "$@"
}

# One value from a query, unaligned.
sql_value() {
    sql "$1" -At -c "$2"
}

in_recovery() {
    [ "$(sql_value "$1" 'SELECT pg_is_in_recovery()')" = t ]
}

# wait_ready SERVICE [SECONDS]: until the server accepts connections over TCP.
wait_ready() {
    local service=$1 limit=${2:-120} waited=0
    until compose exec -T "$service" pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; do
        [ "$waited" -lt "$limit" ] || die "$service did not accept connections within ${limit}s"
        sleep 1
        waited=$((waited + 1))
    done
}

# wait_slot_active SERVICE SLOT [SECONDS]: until a client streams through SLOT on SERVICE.
wait_slot_active() {
    local service=$1 slot=$2 limit=${3:-60} waited=0
    until [ "$(sql "$service" -At -v slot="$slot" \
        <<<"SELECT active FROM pg_replication_slots WHERE slot_name = :'slot'")" = t ]; do
        [ "$waited" -lt "$limit" ] || die "nothing streams through slot $slot on $service after ${limit}s"
        sleep 1
        waited=$((waited + 1))
    done
}

# ensure_slot SERVICE SLOT: create the physical slot if it does not exist.
ensure_slot() {
    sql "$1" -At -v slot="$2" <<'SQL' >/dev/null
SELECT pg_create_physical_replication_slot(:'slot', true)
WHERE NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = :'slot');
SQL
}

# recreate_slot SERVICE SLOT: drop the physical slot if it exists, ending the walsender that
# holds it, and create it again, keeping WAL from now on.
recreate_slot() {
    sql "$1" -At -v slot="$2" <<'SQL' >/dev/null
-- With a timeout, pg_terminate_backend waits for the walsender to exit, releasing the slot.
SELECT pg_terminate_backend(active_pid, 10000)
FROM pg_replication_slots WHERE slot_name = :'slot' AND active_pid IS NOT NULL;
SELECT pg_drop_replication_slot(:'slot')
FROM pg_replication_slots WHERE slot_name = :'slot';
SELECT pg_create_physical_replication_slot(:'slot', true);
SQL
}

# set_lab_env NAME VALUE: record a setting in the .env file beside docker-compose.yml, which
# docker compose reads for ${NAME} (a variable exported in the shell still takes precedence).
set_lab_env() {
    local name=$1 value=$2 env_file="$LAB_DIR/.env" tmp
    tmp=$(mktemp "$LAB_DIR/.env.XXXXXX")
    if [ -f "$env_file" ]; then
        grep -v "^$name=" "$env_file" >"$tmp" || true
    fi
    printf '%s=%s\n' "$name" "$value" >>"$tmp"
    mv "$tmp" "$env_file"
    if [ -n "${!name:-}" ] && [ "${!name}" != "$value" ]; then
        say "note: $name=${!name} in your shell overrides $name=$value in $env_file"
    fi
}
