#!/usr/bin/env bash
# run.sh's provisioning step for the simulated MyEID card: with
# P11CARD_PKCS15_PERSONALISE=1 the running card is personalised again from
# scratch by OpenSC's pkcs15-init (personalise.sh, ~timed); otherwise the
# card started personalised (start.sh loads myeid-personalised.image).
# Then writes the card's public material, read back with OpenSC's
# pkcs15-tool, to $VIRTPIV_STATE_DIR/provisioned (default
# $MYEID_RUN_DIR/provisioned): pub01..04.pem, cert01..03.pem (key 04 has no certificate).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/common.sh"
OUT="${VIRTPIV_STATE_DIR:+$VIRTPIV_STATE_DIR/provisioned}"
OUT="${OUT:-$MYEID_RUN_DIR/provisioned}"
if [ "${P11CARD_PKCS15_PERSONALISE:-0}" = 1 ]; then
    timeout 900 "$HERE/stop.sh"
    timeout 900 "$HERE/personalise.sh" "$MYEID_RUN_DIR/personalised-now.image"
fi
mkdir -p "$OUT"
reader="$(myeid_reader)"
for id in 01 02 03 04; do
    timeout "$T_CMD" pkcs15-tool --reader "$reader" --read-public-key "$id" -o "$OUT/pub$id.pem" >/dev/null
done
for id in 01 02 03; do
    timeout "$T_CMD" pkcs15-tool --reader "$reader" --read-certificate "$id" -o "$OUT/cert$id.pem" >/dev/null
done
echo "myeid: public material in $OUT"
