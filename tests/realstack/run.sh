#!/usr/bin/env bash
# Real-stack tests: the module under the real pcscd, with an independent
# virtual PIV card in the vpcd reader, driven by real consumers.
#
#   tests/realstack/run.sh [MODULE.so]
#
# The card comes from $P11CARD_VIRTPIV (default: ../shared/virtpiv next to
# the repository); without it the suite fails, it does not skip.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MODULE="$(realpath "${1:-$REPO_ROOT/target/release/libp11card_pkcs11.so}")"
VIRTPIV="${P11CARD_VIRTPIV:-$REPO_ROOT/../shared/virtpiv}"
[ -x "$VIRTPIV/start.sh" ] || { echo "realstack: no virtual PIV card at $VIRTPIV (set P11CARD_VIRTPIV)" >&2; exit 1; }
[ -f "$MODULE" ] || { echo "realstack: no module at $MODULE" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/p11card-realstack.XXXXXX")"
export VIRTPIV_RUN_DIR="$WORK/run" VIRTPIV_STATE_DIR="$WORK/state"
cleanup() {
    timeout 60 "$VIRTPIV/stop.sh" >/dev/null 2>&1 || true
    rm -rf -- "$WORK"
}
trap cleanup EXIT

echo "realstack: starting pcscd and the virtual PIV card ($VIRTPIV)"
timeout 300 "$VIRTPIV/start.sh" --fresh >"$WORK/start.log" 2>&1 || { cat "$WORK/start.log"; exit 1; }
timeout 120 "$VIRTPIV/provision.sh" >"$WORK/provision.log" 2>&1 || { cat "$WORK/provision.log"; exit 1; }
PROV="$VIRTPIV_STATE_DIR/provisioned"
APDU_LOG="$VIRTPIV_RUN_DIR/apdu.log"

for suite in "$(dirname "${BASH_SOURCE[0]}")"/suite-*.sh; do
    printf '\n-- %s\n' "$(basename "$suite" .sh)"
    # shellcheck source=/dev/null
    source "$suite"
done

summary
