#!/usr/bin/env bash
# For compatibility with ../shared/virtpiv/provision.sh. The simulated card comes
# provisioned (keys and certificates built in), so this only checks: the public
# material that cardsim-vpcd wrote at start (ca.pem, certXX.pem, pubXX.pem; XX = 9a 9c 9d 9e,
# or sig dec aut with OWNCARD_APP=openpgp) is there, and PIN 123456 verifies on the card
# (OpenPGP: PW1 in mode 82). Prints where the files are. --force is accepted and changes nothing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

for arg in "$@"; do
    case "$arg" in
        --force) ;;
        -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
        *) echo "provision.sh: unknown argument $arg" >&2; exit 2 ;;
    esac
done

card_present || { echo "provision.sh: no card in '$OWNCARD_READER'; run start.sh first" >&2; exit 1; }

[ -s "$OWNCARD_OUT/ca.pem" ] || { echo "provision.sh: no $OWNCARD_OUT/ca.pem; was the card started by start.sh?" >&2; exit 1; }
slots=()
for slot in $OWNCARD_KEY_NAMES; do
    if [ -s "$OWNCARD_OUT/pub$slot.pem" ]; then
        slots+=("$slot")
        timeout "$T_CMD" openssl pkey -pubin -in "$OWNCARD_OUT/pub$slot.pem" -noout ||
            { echo "provision.sh: $OWNCARD_OUT/pub$slot.pem is not a public key" >&2; exit 1; }
        if [ -s "$OWNCARD_OUT/cert$slot.pem" ]; then
            timeout "$T_CMD" openssl verify -CAfile "$OWNCARD_OUT/ca.pem" "$OWNCARD_OUT/cert$slot.pem" >/dev/null ||
                { echo "provision.sh: $OWNCARD_OUT/cert$slot.pem does not verify against ca.pem" >&2; exit 1; }
        fi
    fi
done
[ ${#slots[@]} -gt 0 ] || { echo "provision.sh: no pubXX.pem in $OWNCARD_OUT" >&2; exit 1; }

sw="$(timeout "$T_CMD" opensc-tool -r "$OWNCARD_READER" -s "$OWNCARD_SELECT" -s "$OWNCARD_VERIFY_PIN" 2>&1 |
    grep -o 'SW1=0x[0-9A-Fa-f]*, SW2=0x[0-9A-Fa-f]*' | tail -n 1)" || true
if [ "$sw" != "SW1=0x90, SW2=0x00" ]; then
    echo "provision.sh: PIN 123456 rejected (${sw:-no answer}); restart the card (stop.sh; start.sh) for a factory-new one" >&2
    exit 1
fi
echo "provision.sh: $OWNCARD_APP card provisioned (built in): keys in ${slots[*]}; PIN 123456 verified;"
echo "provision.sh: CA, certificates and public keys in $OWNCARD_OUT"
