#!/bin/sh
# Temporal's persistence and visibility schemas on PostgreSQL (idempotent: create may say "exists").
set -eu
nc -z -w 10 temporal-db 5432
for db in temporal temporal_visibility; do
  temporal-sql-tool --plugin postgres12 --ep temporal-db -u temporal -p 5432 --db "$db" create || true
done
temporal-sql-tool --plugin postgres12 --ep temporal-db -u temporal -p 5432 --db temporal setup-schema -v 0.0 || true
temporal-sql-tool --plugin postgres12 --ep temporal-db -u temporal -p 5432 --db temporal \
  update-schema -d /etc/temporal/schema/postgresql/v12/temporal/versioned
temporal-sql-tool --plugin postgres12 --ep temporal-db -u temporal -p 5432 --db temporal_visibility setup-schema -v 0.0 || true
temporal-sql-tool --plugin postgres12 --ep temporal-db -u temporal -p 5432 --db temporal_visibility \
  update-schema -d /etc/temporal/schema/postgresql/v12/visibility/versioned
echo "Temporal schemas are up to date"
