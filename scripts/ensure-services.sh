#!/usr/bin/env bash
# Make sure the real services the integration tests use are running: MariaDB, Redis
# and (for email tests) Dovecot's binaries. Starts them the way this machine's CI does.
set -euo pipefail

wait_for() {  # wait_for NAME COMMAND...
  local name=$1; shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "ensure-services: $name did not come up" >&2
  return 1
}

if ! mysqladmin --protocol=tcp -h 127.0.0.1 -u root ping >/dev/null 2>&1; then
  echo "ensure-services: starting MariaDB" >&2
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  wait_for MariaDB mysqladmin --protocol=tcp -h 127.0.0.1 -u root ping
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "ensure-services: starting Redis" >&2
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for Redis redis-cli -h 127.0.0.1 -p 6379 ping
fi

if [ -x scripts/ensure-dovecot.sh ] || [ -f scripts/ensure-dovecot.sh ]; then
  bash scripts/ensure-dovecot.sh
fi

# Debian's Chromium for the consent-page browser tests (tests/integration/test_oauth_browser.py,
# driven by Playwright; never `playwright install`). Installed only when missing.
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-services: installing chromium" >&2
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >/dev/null 2>&1; then
    apt-get update >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >/dev/null 2>&1 \
      || echo "ensure-services: chromium could not be installed; browser tests will be skipped" >&2
  fi
fi
