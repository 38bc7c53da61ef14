#!/usr/bin/env bash
# Stops the simulated MyEID card and the pcscd that start.sh started (by
# their PIDs only). The card's image ($MYEID_IMAGE) stays.
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
    for _ in $(seq 1 50); do pid_gone "$pid" && break; sleep 0.1; done
    pid_gone "$pid" || kill -KILL "$pid" 2>/dev/null
    echo "myeid: stopped $comm (pid $pid)"
    rm -f -- "$file"
}

stop_pid "$MYEID_CARD_PID" cardsim-vpcd
stop_pid "$MYEID_PCSCD_PID" pcscd
exit 0
