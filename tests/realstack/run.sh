#!/usr/bin/env bash
# Real-stack tests: the module under the real pcscd, with virtual PIV cards
# in the vpcd reader, driven by real consumers (tests/realstack/suite-*.sh).
#
#   tests/realstack/run.sh [MODULE.so]
#
# Cards: the independent virtual PIV card from $P11CARD_VIRTPIV (default
# ../shared/virtpiv next to the repository; without it the run fails, it
# does not skip), then the project's own simulated card bridged to vpcd
# (tests/realstack/owncard), then the independent virtual OpenPGP card from
# $P11CARD_VIRTPGP (default ../shared/virtpgp, if present) and the project's
# own simulated OpenPGP card (owncard-openpgp), and the project's simulated
# MyEID card personalised by OpenSC's pkcs15-init (owncard-myeid, family
# pkcs15, tests/realstack/pkcs15; P11CARD_PKCS15_PERSONALISE=1 personalises
# it from scratch instead of loading the saved image), unless P11CARD_CARDS lists
# others (e.g. P11CARD_CARDS=virtpgp). Every suite runs
# once per card of the family it names in a "# card-families:" line (no such
# line: piv); P11CARD_SUITES=gnutls runs only suite-gnutls.sh.
#
# Where unshare works (root, or user namespaces), the run goes into private
# mount, PID and network namespaces: its own pcscd socket directory and
# loopback, so that real-stack runs on one machine (CI jobs, benches/run.sh)
# neither see nor disturb each other's pcscd, vpcd ports or servers.
# P11CARD_REALSTACK_ISOLATE=0 runs in the host's namespaces instead.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [ "${P11CARD_REALSTACK_IN_NS:-}" = "" ] && [ "${P11CARD_REALSTACK_ISOLATE:-1}" != 0 ] &&
    timeout 10 unshare --mount --pid --fork --mount-proc --net true >/dev/null 2>&1; then
    P11CARD_REALSTACK_IN_NS=1 exec timeout 7200 unshare --mount --pid --fork --mount-proc --net -- \
        "${BASH_SOURCE[0]}" "$@"
fi
if [ "${P11CARD_REALSTACK_IN_NS:-}" = 1 ]; then
    timeout 10 ip link set lo up
    mkdir -p /run/pcscd
    timeout 10 mount -t tmpfs -o mode=0755 tmpfs /run/pcscd
fi
source "$HERE/lib.sh"

MODULE="$(realpath "${1:-$REPO_ROOT/target/release/libp11card_pkcs11.so}")"
[ -f "$MODULE" ] || { echo "realstack: no module at $MODULE" >&2; exit 1; }
VIRTPIV="${P11CARD_VIRTPIV:-$REPO_ROOT/../shared/virtpiv}"
VIRTPGP="${P11CARD_VIRTPGP:-$REPO_ROOT/../shared/virtpgp}"
PIN=123456

card_dir() {
    case "$1" in
        virtpiv) echo "$VIRTPIV" ;;
        owncard | owncard-openpgp) echo "$HERE/owncard" ;;
        virtpgp) echo "$VIRTPGP" ;;
        owncard-myeid) echo "$HERE/pkcs15" ;;
        *) echo "realstack: unknown card $1" >&2; return 1 ;;
    esac
}

# card_family CARD: the card application the card holds.
card_family() {
    case "$1" in
        virtpgp | owncard-openpgp) echo openpgp ;;
        owncard-myeid) echo pkcs15 ;;
        *) echo piv ;;
    esac
}

# suite_runs_on SUITE FAMILY: the suite's "# card-families:" line names it.
suite_runs_on() {
    local families
    families="$(sed -n 's/^# card-families: *//p' "$1" | head -n 1)"
    [[ " ${families:-piv} " == *" $2 "* ]]
}

default_cards="virtpiv"
[ -x "$HERE/owncard/start.sh" ] && default_cards="virtpiv owncard"
[ -x "$VIRTPGP/start.sh" ] && default_cards="$default_cards virtpgp"
grep -q OWNCARD_APP "$HERE/owncard/common.sh" 2>/dev/null && default_cards="$default_cards owncard-openpgp"
[ -x "$HERE/pkcs15/start.sh" ] && default_cards="$default_cards owncard-myeid"
read -r -a CARDS <<<"${P11CARD_CARDS:-$default_cards}"

CURRENT_CARD_DIR=""
finish_card() {
    run_cleanups
    if [ -n "$CURRENT_CARD_DIR" ]; then
        timeout 60 "$CURRENT_CARD_DIR/stop.sh" >/dev/null 2>&1 || true
    fi
    CURRENT_CARD_DIR=""
}
ROOT_WORK="$(mktemp -d "${TMPDIR:-/tmp}/p11card-realstack.XXXXXX")"
trap 'finish_card; rm -rf -- "$ROOT_WORK"' EXIT
# The module's disk cache (and other programs' caches) private to this run:
# runs on one machine (CI jobs, a re-personalised MyEID card under the same
# serial) never meet each other's cache entries.
export XDG_CACHE_HOME="$ROOT_WORK/cache"
mkdir -p "$XDG_CACHE_HOME"

for CARD_NAME in "${CARDS[@]}"; do
    dir="$(card_dir "$CARD_NAME")"
    [ -x "$dir/start.sh" ] || { echo "realstack: no card $CARD_NAME at $dir (set P11CARD_VIRTPIV)" >&2; exit 1; }
    WORK="$ROOT_WORK/$CARD_NAME"
    mkdir -p "$WORK"
    export VIRTPIV_RUN_DIR="$WORK/run" VIRTPIV_STATE_DIR="$WORK/state"
    export VIRTPGP_RUN_DIR="$WORK/run" VIRTPGP_STATE_DIR="$WORK/state"
    CARD_FAMILY="$(card_family "$CARD_NAME")"
    # The project's own card plays either application.
    if [ "$CARD_NAME" = owncard-openpgp ]; then export OWNCARD_APP=openpgp; else unset OWNCARD_APP; fi
    printf '\n==== card: %s (%s)\n' "$CARD_NAME" "$dir"
    CURRENT_CARD_DIR="$dir"
    timeout 600 "$dir/start.sh" --fresh >"$WORK/start.log" 2>&1 || { cat "$WORK/start.log"; exit 1; }
    timeout 120 "$dir/provision.sh" >"$WORK/provision.log" 2>&1 || { cat "$WORK/provision.log"; exit 1; }
    PROV="$VIRTPIV_STATE_DIR/provisioned"
    APDU_LOG="$VIRTPIV_RUN_DIR/apdu.log"
    card_manifest
    for suite in "$HERE"/suite-${P11CARD_SUITES:-*}.sh; do
        suite_runs_on "$suite" "$CARD_FAMILY" || continue
        printf '\n-- %s on %s\n' "$(basename "$suite" .sh)" "$CARD_NAME"
        # shellcheck source=/dev/null
        source "$suite"
        run_cleanups
    done
    finish_card
done

summary
