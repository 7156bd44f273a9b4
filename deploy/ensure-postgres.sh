#!/usr/bin/env bash
# Make sure PostgreSQL answers on 127.0.0.1:5432 before the suite runs (the suite runs on it
# and on SQLite). Starts the machine's cluster if it is installed but down.
set -euo pipefail
ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
if ready; then exit 0; fi
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  echo "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do ready && exit 0; sleep 1; done
fi
echo "PostgreSQL is not reachable on 127.0.0.1:5432 and could not be started." >&2
echo "Install it (apt-get install postgresql) with trust auth for 127.0.0.1, or set TICKETOPS_TEST_PG." >&2
exit 1
