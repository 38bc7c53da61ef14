#!/usr/bin/env bash
# Starts pcscd (with the vpcd virtual reader) and p11card's simulated PIV card
# (cardsim-vpcd), as ../shared/virtpiv/start.sh does for virtpiv; with
# OWNCARD_APP=openpgp its simulated OpenPGP card instead (port 35964, "Virtual PCD 00 01").
#   ./start.sh            (--fresh is accepted and changes nothing: every start is a factory card)
# Environment: OWNCARD_APP (piv | openpgp), OWNCARD_RUN_DIR (pid files, logs, apdu.log; default
# $VIRTPIV_RUN_DIR, else ${TMPDIR:-/tmp}/owncard-run; for openpgp $VIRTPGP_RUN_DIR, else
# ${TMPDIR:-/tmp}/owncard-openpgp-run), OWNCARD_STATE_DIR (public material under provisioned/;
# default $VIRTPIV_STATE_DIR, else ${TMPDIR:-/tmp}/owncard-state; for openpgp
# owncard-openpgp-state), OWNCARD_VPCD_PORT (35963, openpgp 35964 = "Virtual PCD 00 01"),
# OWNCARD_READER, OWNCARD_TRACE (default $RUN_DIR/apdu.log; 0 = off, 1 = the card's log),
# OWNCARD_DELAY_US (or VIRTPIV_DELAY_US) FIXED[,PER_BYTE], OWNCARD_KEYS (cardsim-vpcd --key:
# e.g. "9d=rsa2048", or for openpgp "dec=x25519 aut=ed25519"), OWNCARD_SIGNED_CHUID=1 (PIV: a
# CHUID with an issuer signature), OWNCARD_PIV_EXTRAS (more cardsim-vpcd options for the PIV
# card: "--retired 1=p256 --no-cert 9e --policy 9c=once --global-pin 87654321"),
# OWNCARD_PIV_ATR (another ATR for the PIV card, e.g. 3b:95:13:81:01:80:73:ff:01:00:0b), OWNCARD_BIN
# (a prebuilt binary).
# Exits 0 once `opensc-tool` sees the card in "$OWNCARD_READER".
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

for arg in "$@"; do
    case "$arg" in
        --fresh) ;; # compatibility with virtpiv: the simulated card is always factory-new
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "start.sh: unknown argument $arg" >&2; exit 2 ;;
    esac
done

ensure_packages pcscd vsmartcard-vpcd pcsc-tools opensc opensc-pkcs11 openssl
mkdir -p "$OWNCARD_RUN_DIR"
PCSCD_PID="$OWNCARD_RUN_DIR/owncard-pcscd.pid"
CARD_PID="$OWNCARD_RUN_DIR/cardsim-vpcd.pid"

# 1. pcscd (ours, or an already running one that has the vpcd reader)
other=""
if pid_alive "$PCSCD_PID" pcscd; then
    echo "owncard: pcscd already running (pid $(cat "$PCSCD_PID"), started by start.sh)"
else
    # Another pcscd: use it if it lists the vpcd reader. One that is just
    # starting or exiting gets a few seconds to make up its mind.
    other=none
    for _ in $(seq 1 25); do
        if ! other_pcscd_running; then other=none; break; fi
        if vpcd_reader_listed; then other=ok; break; fi
        other=bad
        sleep 0.2
    done
    if [ "$other" = bad ]; then
        echo "owncard: a pcscd not started by start.sh is running without the vpcd reader;" >&2
        echo "         restart it after installing vsmartcard-vpcd (e.g. systemctl restart pcscd)." >&2
        exit 1
    fi
fi
if [ "$other" = ok ]; then
    echo "owncard: using the pcscd that is already running (not started here; stop.sh leaves it alone)"
elif ! pid_alive "$PCSCD_PID" pcscd; then
    setsid pcscd --foreground >>"$OWNCARD_RUN_DIR/pcscd.log" 2>&1 </dev/null &
    echo $! >"$PCSCD_PID"
    echo "owncard: started pcscd (pid $(cat "$PCSCD_PID"))"
fi
for _ in $(seq 1 50); do vpcd_reader_listed && break; sleep 0.2; done
vpcd_reader_listed || { echo "owncard: vpcd reader did not show up (see $OWNCARD_RUN_DIR/pcscd.log)" >&2; exit 1; }

# 2. the card binary: OWNCARD_BIN, else the workspace's release build (rebuilt when
#    missing or older than the cardsim sources; the card uses nothing outside cardsim/).
if [ -n "${OWNCARD_BIN:-}" ]; then
    BIN="$OWNCARD_BIN"
else
    BIN="$OWNCARD_TARGET/release/cardsim-vpcd"
    stale=0
    if [ ! -x "$BIN" ]; then
        stale=1
    elif [ -n "$(find "$OWNCARD_REPO/cardsim" "$OWNCARD_REPO/Cargo.lock" -newer "$BIN" \
            \( -name '*.rs' -o -name '*.toml' -o -name '*.der' -o -name Cargo.lock \) -print -quit 2>/dev/null)" ]; then
        stale=1
    fi
    if [ "$stale" = 1 ]; then
        echo "owncard: building cardsim-vpcd (cargo build --release -p p11card-cardsim --bin cardsim-vpcd)"
        (cd "$OWNCARD_REPO" && timeout 1200 cargo build --release -p p11card-cardsim --bin cardsim-vpcd) >&2
        # cargo leaves an up-to-date binary alone; mark it as checked against these sources.
        touch "$BIN"
    fi
fi
timeout "$T_CMD" "$BIN" --help >/dev/null 2>&1 || { echo "owncard: $BIN does not run" >&2; exit 1; }

# 3. the card
if pid_alive "$CARD_PID" cardsim-vpcd; then
    echo "owncard: card already running (pid $(cat "$CARD_PID"))"
else
    if card_present; then
        # vpcd would queue our connection behind the card that is there.
        echo "owncard: '$OWNCARD_READER' already holds a card not started here (ATR $(reader_atr));" >&2
        other_port=35964; [ "$OWNCARD_VPCD_PORT" = 35964 ] && other_port=35963
        echo "         use the other vpcd slot (OWNCARD_VPCD_PORT=$other_port) or stop that card." >&2
        exit 1
    fi
    mkdir -p "$OWNCARD_OUT"
    args=(--app "$OWNCARD_APP" --addr "127.0.0.1:$OWNCARD_VPCD_PORT" --out "$OWNCARD_OUT")
    trace="${OWNCARD_TRACE:-$OWNCARD_RUN_DIR/apdu.log}"
    case "$trace" in
        0) trace="" ;;
        1|stderr) args+=(--trace -) ;;
        *) args+=(--trace "$trace") ;;
    esac
    delay="${OWNCARD_DELAY_US:-${VIRTPIV_DELAY_US:-}}"
    [ -n "$delay" ] && args+=(--delay-us "$delay")
    for key in ${OWNCARD_KEYS:-}; do args+=(--key "$key"); done
    [ "${OWNCARD_SIGNED_CHUID:-0}" = 1 ] && args+=(--signed-chuid)
    # shellcheck disable=SC2206 # words on purpose: "--retired 1=p256 --no-cert 9e"
    [ -n "${OWNCARD_PIV_EXTRAS:-}" ] && args+=(${OWNCARD_PIV_EXTRAS})
    [ -n "${OWNCARD_PIV_ATR:-}" ] && args+=(--atr "$OWNCARD_PIV_ATR")
    setsid "$BIN" "${args[@]}" >>"$OWNCARD_RUN_DIR/cardsim-vpcd.log" 2>&1 </dev/null &
    echo $! >"$CARD_PID"
    echo "owncard: started $OWNCARD_APP card $BIN (pid $(cat "$CARD_PID"), port $OWNCARD_VPCD_PORT, trace: ${trace:-off}, public material: $OWNCARD_OUT)"
fi

for _ in $(seq 1 100); do card_present && break; sleep 0.2; done
if ! card_present; then
    echo "owncard: no card in '$OWNCARD_READER' (see $OWNCARD_RUN_DIR/cardsim-vpcd.log)" >&2
    exit 1
fi
atr="$(reader_atr)"
if [ "$atr" != "$OWNCARD_ATR" ]; then
    echo "owncard: the card in '$OWNCARD_READER' has ATR $atr, not cardsim's $OWNCARD_ATR" >&2
    exit 1
fi
echo "owncard: card present in '$OWNCARD_READER'"
