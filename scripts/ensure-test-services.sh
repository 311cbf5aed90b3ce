#!/usr/bin/env bash
# What the test suite needs besides Python packages: the redis-server binary (the tests start a
# private server on a free port, and three cluster nodes joined by redis-cli, which the Debian
# package pulls in through redis-tools), a PostgreSQL server on 127.0.0.1:5432 with trust auth
# (the tests create a fresh database per session and drop it), and Debian's chromium for the
# dashboard's browser tests (Playwright drives /usr/bin/chromium; no browser download). Installs
# or starts what is missing,
# where this machine allows it; says what is missing otherwise. Never touches data.
set -uo pipefail

if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure-test-services: installing redis-server" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    echo "ensure-test-services: redis-server is missing (apt-get install redis-server)" >&2
  fi
fi

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure-test-services: installing chromium (dashboard browser tests)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "ensure-test-services: chromium is missing (apt-get install chromium)" >&2
  fi
fi

pg_ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if command -v pg_isready >/dev/null 2>&1 && ! pg_ready; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "ensure-test-services: starting the local PostgreSQL cluster" >&2
    for version in $(ls /etc/postgresql); do
      pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || true
    done
    for _ in $(seq 1 50); do pg_ready && break; sleep 0.2; done
  fi
  pg_ready || echo "ensure-test-services: no PostgreSQL on 127.0.0.1:5432; set CONVEYOR_TEST_POSTGRES" >&2
fi
exit 0
