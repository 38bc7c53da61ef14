#!/usr/bin/env bash
# Starts pcscd with one vpcd reader, "Virtual PCD MyEID 00 00" (TCP port
# 35965; not vpcd's standard 35963/35964, which the PIV and OpenPGP cards
# use), and the simulated MyEID card (cardsim-vpcd --app myeid) in it.
# A pcscd that is already running and lacks that reader is not touched:
# start.sh then fails (run it in private namespaces, as tests/realstack/run.sh
# does, or stop that pcscd).
#   ./start.sh [--fresh]  the card personalised by personalise.sh (a fresh copy
#                         of myeid-personalised.image; the copy takes the changes)
#   ./start.sh --factory  a factory card (MF only, no PINs), for pkcs15-init
# Environment: MYEID_RUN_DIR (default ${TMPDIR:-/tmp}/myeid-run: pid files,
# logs, apdu.log, card.image), MYEID_PERSONALISED (the image to start from),
# MYEID_TRACE (default $MYEID_RUN_DIR/apdu.log; 0 = off), MYEID_DELAY_US
# FIXED[,PER_BYTE], OWNCARD_BIN (a prebuilt cardsim-vpcd).
# Exits 0 once the card is in the reader.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

factory=0
for arg in "$@"; do
    case "$arg" in
        --fresh) ;;
        --factory) factory=1 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "start.sh: unknown argument $arg" >&2; exit 2 ;;
    esac
done
mkdir -p "$MYEID_RUN_DIR"

# 1. pcscd with our reader.conf.d (the system's vpcd entry + ours)
if pid_alive "$MYEID_PCSCD_PID" pcscd; then
    echo "myeid: pcscd already running (pid $(cat "$MYEID_PCSCD_PID"))"
else
    for _ in $(seq 1 25); do other_pcscd_running || break; sleep 0.2; done
    if other_pcscd_running; then
        if [ -z "$(myeid_reader)" ]; then
            echo "myeid: a pcscd not started here runs without the '$MYEID_FRIENDLYNAME' reader;" >&2
            echo "       stop it (or add $MYEID_RUN_DIR/reader.conf.d/myeid to /etc/reader.conf.d)." >&2
            exit 1
        fi
        echo "myeid: using the pcscd that is already running (it has our reader)"
    else
        conf="$MYEID_RUN_DIR/reader.conf.d"
        mkdir -p "$conf"
        # Only our reader: vpcd's driver keeps its card state per slot number,
        # so a second reader.conf entry for it in the same pcscd would show our
        # card in "Virtual PCD 00 00" too.
        rm -f -- "$conf"/*
        port_hex="$(printf '0x%04X' "$MYEID_VPCD_PORT")"
        printf 'FRIENDLYNAME "%s"\nDEVICENAME /dev/null:%s\nLIBPATH /usr/lib/pcsc/drivers/serial/libifdvpcd.so\nCHANNELID %s\n' \
            "$MYEID_FRIENDLYNAME" "$port_hex" "$port_hex" >"$conf/myeid"
        setsid pcscd --foreground --config "$conf" >>"$MYEID_RUN_DIR/pcscd.log" 2>&1 </dev/null &
        echo $! >"$MYEID_PCSCD_PID"
        echo "myeid: started pcscd (pid $(cat "$MYEID_PCSCD_PID"), readers from $conf)"
    fi
fi
for _ in $(seq 1 50); do [ -n "$(myeid_reader)" ] && break; sleep 0.2; done
[ -n "$(myeid_reader)" ] || { echo "myeid: reader '$MYEID_FRIENDLYNAME' did not show up" >&2; exit 1; }

# 2. the card binary (as owncard/start.sh builds it)
if [ -n "${OWNCARD_BIN:-}" ]; then
    BIN="$OWNCARD_BIN"
else
    BIN="$OWNCARD_TARGET/release/cardsim-vpcd"
    if [ ! -x "$BIN" ] || [ -n "$(find "$OWNCARD_REPO/cardsim" "$OWNCARD_REPO/Cargo.lock" -newer "$BIN" \
            \( -name '*.rs' -o -name '*.toml' -o -name Cargo.lock \) -print -quit 2>/dev/null)" ]; then
        echo "myeid: building cardsim-vpcd (cargo build --release -p p11card-cardsim --bin cardsim-vpcd)"
        (cd "$OWNCARD_REPO" && timeout 1200 cargo build --release -p p11card-cardsim --bin cardsim-vpcd) >&2
        touch "$BIN"
    fi
fi

# 3. the card
if pid_alive "$MYEID_CARD_PID" cardsim-vpcd; then
    echo "myeid: card already running (pid $(cat "$MYEID_CARD_PID"))"
else
    if [ "$factory" = 1 ]; then
        rm -f -- "$MYEID_IMAGE"
    else
        [ -f "$MYEID_PERSONALISED" ] || { echo "myeid: no card image $MYEID_PERSONALISED (run personalise.sh)" >&2; exit 1; }
        cp -- "$MYEID_PERSONALISED" "$MYEID_IMAGE"
    fi
    args=(--app myeid --addr "127.0.0.1:$MYEID_VPCD_PORT" --image "$MYEID_IMAGE" --out "$MYEID_RUN_DIR/public")
    trace="${MYEID_TRACE:-$MYEID_RUN_DIR/apdu.log}"
    [ "$trace" != 0 ] && args+=(--trace "$trace")
    [ -n "${MYEID_DELAY_US:-}" ] && args+=(--delay-us "$MYEID_DELAY_US")
    setsid "$BIN" "${args[@]}" >>"$MYEID_RUN_DIR/cardsim-vpcd.log" 2>&1 </dev/null &
    echo $! >"$MYEID_CARD_PID"
    echo "myeid: started the MyEID card (pid $(cat "$MYEID_CARD_PID"), port $MYEID_VPCD_PORT, image $MYEID_IMAGE)"
fi
for _ in $(seq 1 100); do myeid_card_present && break; sleep 0.2; done
myeid_card_present || { echo "myeid: no card in '$(myeid_reader)' (see $MYEID_RUN_DIR/cardsim-vpcd.log)" >&2; exit 1; }
echo "myeid: card present in '$(myeid_reader)'"
