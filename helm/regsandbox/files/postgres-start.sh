#!/bin/sh
# Start the bundled PostgreSQL: on an empty volume, first create the cluster (password
# authentication only) and the platform's three databases, then serve. Runs as the image's
# non-root user with Debian's server binaries.
set -eu
bin="${PG_BIN:-/usr/lib/postgresql/15/bin}"
data="${PGDATA:?PGDATA names the data directory}"
user="${POSTGRES_USER:-regsandbox}"
port="${PGPORT:-5432}"
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}"

if [ ! -s "$data/PG_VERSION" ]; then
  mkdir -p "$data"
  chmod 700 "$data"
  pwfile="$(mktemp)"
  printf '%s' "$POSTGRES_PASSWORD" >"$pwfile"
  "$bin/initdb" -D "$data" -U "$user" --pwfile="$pwfile" --auth=scram-sha-256 \
    --encoding=UTF8 --locale=C >/dev/null
  rm -f "$pwfile"
  echo "host all all 0.0.0.0/0 scram-sha-256" >>"$data/pg_hba.conf"
  echo "host all all ::/0 scram-sha-256" >>"$data/pg_hba.conf"
  # Create the databases over a private socket before anyone can connect from the network.
  socket="$(mktemp -d)"
  "$bin/pg_ctl" -D "$data" -w -o "-c listen_addresses='' -c unix_socket_directories=$socket -p $port" start >/dev/null
  for db in ${POSTGRES_DATABASES:-platform prefect mlflow}; do
    PGPASSWORD="$POSTGRES_PASSWORD" "$bin/psql" -h "$socket" -p "$port" -U "$user" -d postgres \
      -v ON_ERROR_STOP=1 -q -c "CREATE DATABASE \"$db\""
  done
  "$bin/pg_ctl" -D "$data" -w -m fast stop >/dev/null
  rmdir "$socket"
  echo "created PostgreSQL cluster in $data with databases ${POSTGRES_DATABASES:-platform prefect mlflow}"
fi
exec "$bin/postgres" -D "$data" -c listen_addresses='*' -c "port=$port" \
  -c unix_socket_directories="${PG_SOCKET_DIR:-/tmp}"
