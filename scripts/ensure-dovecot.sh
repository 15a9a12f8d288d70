#!/usr/bin/env bash
# Ensure a dovecot IMAP binary is available for the integration tests' ImapServer fake.
#
# The tests run dovecot as a private foreground process with a generated config in a temp dir;
# they never use the distro service. So: install the package if missing, then make sure the
# packaged system service is stopped and disabled so it does not hold 143/993 or confuse anyone.
# Idempotent: safe to run any number of times (and concurrently from parallel test workers,
# thanks to the flock below).
set -euo pipefail

DOVECOT_BIN=/usr/sbin/dovecot

log() { printf 'ensure-dovecot: %s\n' "$*" >&2; }

# Fully installed, not merely unpacked: the binary appears mid-install, long before the package is
# configured, and a concurrent caller must not mistake that for "ready".
installed() {
    [ -x "$DOVECOT_BIN" ] && [ -x /usr/lib/dovecot/imap ] && [ -x /usr/lib/dovecot/imap-login ] || return 1
    if command -v dpkg-query >/dev/null 2>&1; then
        dpkg-query -W -f='${Status}' dovecot-imapd 2>/dev/null | grep -q 'install ok installed' || return 1
    fi
}

stop_system_service() {
    # Neutralise the packaged daemon. Any of these may fail (no systemd in containers, service
    # already stopped, ...) and that's fine: we only care that nothing of ours depends on it.
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        systemctl disable --now dovecot.service dovecot.socket >/dev/null 2>&1 || true
    fi
    if command -v service >/dev/null 2>&1; then
        service dovecot stop >/dev/null 2>&1 || true
    fi
    if command -v update-rc.d >/dev/null 2>&1 && [ -e /etc/init.d/dovecot ]; then
        update-rc.d dovecot disable >/dev/null 2>&1 || true
    fi
    # Last resort: a system dovecot master started from the packaged config (not ours, whose
    # configs live under a temp dir) is identified by its pid file.
    local pidfile=/run/dovecot/master.pid
    if [ -s "$pidfile" ]; then
        local pid
        pid=$(cat "$pidfile")
        if kill -0 "$pid" 2>/dev/null; then
            log "stopping system dovecot master (pid $pid)"
            kill "$pid" 2>/dev/null || true
        fi
    fi
}

install_dovecot() {
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            SUDO=(sudo -n)
        else
            log "dovecot missing and not root (no passwordless sudo): cannot install dovecot-imapd"
            return 1
        fi
    else
        SUDO=()
    fi
    # policy-rc.d exit 101 tells invoke-rc.d not to start the service at install time, so the
    # package never grabs ports 143/993 even briefly. Only add it if none exists, and remove ours.
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
        "${SUDO[@]}" chmod 755 "$policy"
        own_policy=1
    fi
    local rc=0
    export DEBIAN_FRONTEND=noninteractive
    # Lock::Timeout: wait for another apt/dpkg run instead of failing at once.
    local apt_install=(apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=300
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold dovecot-imapd)
    if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive "${apt_install[@]}"; then
        log "install failed; running apt-get update and retrying"
        "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=300 update && "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive "${apt_install[@]}" || rc=$?
    fi
    if [ "$own_policy" -eq 1 ]; then
        "${SUDO[@]}" rm -f "$policy"
    fi
    return "$rc"
}

main() {
    if installed; then
        stop_system_service
        exit 0
    fi
    # Serialise concurrent installers (pytest-xdist workers may all call us at once).
    local lock=/tmp/hermes-ensure-dovecot.lock
    exec 9>>"$lock"
    flock 9
    if ! installed; then
        log "installing dovecot-imapd"
        install_dovecot
    fi
    stop_system_service
    if ! installed; then
        log "dovecot-imapd still not (fully) installed"
        exit 1
    fi
    log "dovecot ready: $("$DOVECOT_BIN" --version)"
}

main "$@"
