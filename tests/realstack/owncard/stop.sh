#!/usr/bin/env bash
# Stops the simulated card and the pcscd that start.sh started (by their PIDs
# only); a pcscd that start.sh found running is left alone.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

stop_pid() { # pidfile comm
    local file="$1" comm="$2" pid
    if ! pid_alive "$file" "$comm"; then
        rm -f -- "$file"
        return 0
    fi
    pid="$(cat "$file")"
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 50); do
        pid_gone "$pid" && break
        sleep 0.1
    done
    if ! pid_gone "$pid"; then
        kill -KILL "$pid" 2>/dev/null
    fi
    echo "owncard: stopped $comm (pid $pid)"
    rm -f -- "$file"
}

stop_pid "$OWNCARD_RUN_DIR/cardsim-vpcd.pid" cardsim-vpcd
stop_pid "$OWNCARD_RUN_DIR/owncard-pcscd.pid" pcscd
exit 0
