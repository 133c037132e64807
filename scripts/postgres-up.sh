#!/usr/bin/env bash
# Installs (Debian package) and starts a local PostgreSQL for the origin's PostgreSQL tests,
# creating the `fastgate` role and a database, by default `fastgate_test` (the first argument
# names another). The database is dropped and created afresh on every call, so a run never
# inherits tables or migration history from an earlier checkout. Prints the URL.
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi
version=$(ls /usr/lib/postgresql | sort -V | tail -n1)
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -q "^$version main$"; then
  pg_createcluster "$version" main >&2
fi
pg_ctlcluster "$version" main start >&2 2>/dev/null || true
for _ in $(seq 1 30); do
  su postgres -c "psql -qtAc 'select 1'" >/dev/null 2>&1 && break
  sleep 1
done
su postgres -c "psql -qtAc \"select 1 from pg_roles where rolname='fastgate'\"" | grep -q 1 ||
  su postgres -c "psql -qc \"create user fastgate with password 'fastgate' superuser\"" >&2
db=${1:-fastgate_test}
case "$db" in *[!a-z0-9_]* | "") echo "postgres-up: bad database name: $db" >&2; exit 2 ;; esac
su postgres -c "dropdb --if-exists --force $db" >&2
su postgres -c "createdb -O fastgate $db" >&2
echo "postgres://fastgate:fastgate@127.0.0.1/$db"
