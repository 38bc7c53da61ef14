#!/usr/bin/env bash
# run.sh's provisioning step for the simulated MyEID card: with
# P11CARD_PKCS15_PERSONALISE=1 the running card is personalised again from
# scratch by OpenSC's pkcs15-init (personalise.sh, ~timed); otherwise the
# card started personalised (start.sh loads myeid-personalised.image).
# Then writes the card's public material, read back with OpenSC's
# pkcs15-tool, to $VIRTPIV_STATE_DIR/provisioned (default
# $MYEID_RUN_DIR/provisioned): pub01..06.pem, cert01/02/03/05.pem (key 04
# has no certificate), and ca.pem, the certificate of the CA that issued
# them; and manifest.sh, what the consumer suites need to know about the
# card (tests/realstack/lib.sh card_manifest).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/common.sh"
OUT="${VIRTPIV_STATE_DIR:+$VIRTPIV_STATE_DIR/provisioned}"
OUT="${OUT:-$MYEID_RUN_DIR/provisioned}"
mkdir -p "$OUT"
if [ "${P11CARD_PKCS15_PERSONALISE:-0}" = 1 ]; then
    timeout 900 "$HERE/stop.sh"
    timeout 900 "$HERE/personalise.sh" "$MYEID_RUN_DIR/personalised-now.image"
    cp -- "$MYEID_RUN_DIR/personalised-now.ca.pem" "$OUT/ca.pem"
else
    cp -- "${MYEID_PERSONALISED%.image}.ca.pem" "$OUT/ca.pem"
fi
reader="$(myeid_reader)"
for id in 01 02 03 04 05 06; do
    timeout "$T_CMD" pkcs15-tool --reader "$reader" --read-public-key "$id" -o "$OUT/pub$id.pem" >/dev/null
done
for id in 01 02 03 05; do
    timeout "$T_CMD" pkcs15-tool --reader "$reader" --read-certificate "$id" -o "$OUT/cert$id.pem" >/dev/null
done
# For the consumer suites (lib.sh card_manifest; the rest as its pkcs15
# defaults): key 03 has a certificate, but its PIN is the signature PIN,
# wanted before every use (always-authenticate): not a key that signs on
# the user PIN (SIGN_KEYS); ssh-agent cannot use it either, but it comes
# after the EC key in the card's order, so ssh logs in before trying it
# and suite-ssh.sh's refused-key check has nothing to see. Keys 04 and 06
# (RSA-1024, the key suite-policy.sh's strict preset refuses) have no
# certificate; the CA's certificate belongs to no key: 5 certificates,
# 7 public keys (ssh-keygen -D also lists the CA certificate's key).
# Key 03 is the always-authenticate key that signs (suite-real-life.sh).
cat >"$OUT/manifest.sh" <<'MANIFEST'
CARD_KEYS="01 02 03 05"
KEY_LABEL[03]="MyEID signature"
CERT_COUNT=5
PUBLIC_KEY_COUNT=7
LEGACY_RSA_KEY=06
ALWAYS_AUTH_KEY=03
ALWAYS_AUTH_PIN=654321
MANIFEST
echo "myeid: public material in $OUT"
