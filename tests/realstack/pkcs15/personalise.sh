#!/usr/bin/env bash
# Personalises a factory-new simulated MyEID card with OpenSC's pkcs15-init
# (an independent implementation: the PKCS#15 files p11card reads are
# written by OpenSC, not by this project), and saves the card image.
#   ./personalise.sh [IMAGE]      (default: myeid-personalised.image here)
# What it creates (OpenSC's myeid.profile decides the layout):
#   PKCS#15 application 3F00/5015, SO PIN (ref 3) 87654321 / SO PUK 87654321,
#   user PIN (ref 1, auth ID 01) 123456 / PUK 12345678,
#   signature PIN (auth ID 02, the next free reference) 654321 / PUK 11223344,
#   key 01 "MyEID RSA" RSA-2048 generated on the card (sign, decrypt),
#   key 02 "MyEID EC" EC P-256 generated on the card (sign),
#   key 03 "MyEID signature" EC P-256 generated on the card
#   (nonRepudiation), behind the signature PIN,
#   key 04 "MyEID no certificate" RSA-2048 generated on the card (sign),
#   key 06 "MyEID legacy RSA-1024" RSA-1024 generated on the card (sign),
#   without a certificate: a key algorithm policies refuse,
#   without a certificate (its public key only in the PuKDF),
#   key 05 "MyEID ECDH" EC P-256 generated on the card (derive: ECDH),
#   certificates for 01, 02, 03 and 05, issued by a throw-away test CA
#   ("CN=p11card MyEID test CA"), the CA's certificate (authority),
#   a public data object "p11card public data" and a private one
#   "p11card private data" (auth ID 01), both of application "p11card test",
#   then the card is finalised (ACTIVATE APPLET: access conditions in force).
# Saves the image and, next to it, the CA certificate (IMAGE minus .image,
# plus .ca.pem). Leaves the card running (stop with stop.sh) unless PERSONALISE_STOP=1;
# prints how long pkcs15-init took. Public material: $MYEID_RUN_DIR/personalise/.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/common.sh"
OUT_IMAGE="${1:-$MYEID_PERSONALISED}"
SO_PIN=87654321
SO_PUK=87654321
PIN=123456
PUK=12345678
SIG_PIN=654321
SIG_PUK=11223344
T="${T:-120}"
W="$MYEID_RUN_DIR/personalise"
rm -rf -- "$W"
mkdir -p "$W"

timeout 900 "$HERE/start.sh" --factory
reader="$(myeid_reader)"
started=$(date +%s.%N)
P15I=(timeout "$T" pkcs15-init --reader "$reader")
step() { # description command...
    echo "personalise: $1"
    shift
    "$@" >>"$W/pkcs15-init.log" 2>&1 || { echo "personalise: failed: $*" >&2; tail -n 30 "$W/pkcs15-init.log" >&2; exit 1; }
}
step "erase the card (INITIALISE APPLET)" "${P15I[@]}" --erase-card
step "create the PKCS#15 application and the SO PIN" "${P15I[@]}" --create-pkcs15 \
    --so-pin "$SO_PIN" --so-puk "$SO_PUK" --label "p11card MyEID"
step "user PIN (auth ID 01) with PUK" "${P15I[@]}" --store-pin --auth-id 01 --label "User PIN" \
    --pin "$PIN" --puk "$PUK" --so-pin "$SO_PIN"
step "RSA-2048 key 01 generated on the card" "${P15I[@]}" --generate-key rsa/2048 --auth-id 01 \
    --id 01 --label "MyEID RSA" --key-usage sign,decrypt --pin "$PIN" --so-pin "$SO_PIN"
step "EC P-256 key 02 generated on the card" "${P15I[@]}" --generate-key ec/prime256v1 --auth-id 01 \
    --id 02 --label "MyEID EC" --key-usage sign --pin "$PIN" --so-pin "$SO_PIN"
step "signature PIN (auth ID 02) with PUK" "${P15I[@]}" --store-pin --auth-id 02 --label "Signature PIN" \
    --pin "$SIG_PIN" --puk "$SIG_PUK" --so-pin "$SO_PIN"
step "EC P-256 key 03 (non-repudiation, signature PIN) generated on the card" "${P15I[@]}" \
    --generate-key ec/prime256v1 --auth-id 02 --id 03 --label "MyEID signature" \
    --key-usage nonRepudiation --pin "$SIG_PIN" --so-pin "$SO_PIN"
step "RSA-2048 key 04 (no certificate) generated on the card" "${P15I[@]}" --generate-key rsa/2048 \
    --auth-id 01 --id 04 --label "MyEID no certificate" --key-usage sign --pin "$PIN" --so-pin "$SO_PIN"
step "EC P-256 key 05 (ECDH) generated on the card" "${P15I[@]}" --generate-key ec/prime256v1 --auth-id 01 \
    --id 05 --label "MyEID ECDH" --key-usage keyAgreement --pin "$PIN" --so-pin "$SO_PIN"
step "RSA-1024 key 06 (legacy, no certificate) generated on the card" "${P15I[@]}" --generate-key rsa/1024 \
    --auth-id 01 --id 06 --label "MyEID legacy RSA-1024" --key-usage sign --pin "$PIN" --so-pin "$SO_PIN"
for id in 01 02 03 04 05 06; do
    step "read public key $id" timeout "$T" pkcs15-tool --reader "$reader" --read-public-key "$id" -o "$W/pub$id.pem"
done
gen_done=$(date +%s.%N)

# A throw-away test CA issues certificates for the card's public keys.
openssl ecparam -name prime256v1 -genkey -noout -out "$W/ca.key" 2>/dev/null
openssl req -new -x509 -key "$W/ca.key" -subj "/O=p11card test/CN=p11card MyEID test CA" \
    -days 3650 -out "$W/ca.pem" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$W/csr.key" 2>/dev/null
for id in 01 02 03 05; do
    case "$id" in 01) cn="MyEID RSA key" ;; 02) cn="MyEID EC key" ;; 03) cn="MyEID signature key" ;;
        05) cn="MyEID ECDH key" ;; esac
    openssl req -new -key "$W/csr.key" -subj "/O=p11card test/CN=$cn" -out "$W/csr$id.pem" 2>/dev/null
    case "$id" in 01) usage=digitalSignature,keyEncipherment ;; 02) usage=digitalSignature ;;
        03) usage=nonRepudiation ;; 05) usage=keyAgreement ;; esac
    # No subjectAltName: client certificates, kept under 512 bytes (two
    # READ BINARYs of 256) where the key allows it.
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,%s\nextendedKeyUsage=clientAuth,serverAuth,emailProtection\n' \
        "$usage" >"$W/ext$id.cnf"
    openssl x509 -req -in "$W/csr$id.pem" -CA "$W/ca.pem" -CAkey "$W/ca.key" -CAcreateserial \
        -force_pubkey "$W/pub$id.pem" -days 3650 -sha256 -extfile "$W/ext$id.cnf" -out "$W/cert$id.pem" 2>/dev/null
done
rm -f -- "$W/csr.key" "$W"/csr*.pem
certs_start=$(date +%s.%N)
for id in 01 02 03 05; do
    case "$id" in 01) label="MyEID RSA" pin="$PIN" ;; 02) label="MyEID EC" pin="$PIN" ;;
        03) label="MyEID signature" pin="$SIG_PIN" ;; 05) label="MyEID ECDH" pin="$PIN" ;; esac
    step "store certificate $id" "${P15I[@]}" --store-certificate "$W/cert$id.pem" --id "$id" \
        --label "$label" --pin "$pin" --so-pin "$SO_PIN"
done
step "store the CA certificate (authority)" "${P15I[@]}" --store-certificate "$W/ca.pem" --authority \
    --id CA --label "p11card MyEID test CA" --pin "$PIN" --so-pin "$SO_PIN"
printf 'p11card public data object\n' >"$W/data-public.txt"
printf 'p11card private data object\n' >"$W/data-private.txt"
step "store a public data object" "${P15I[@]}" --store-data "$W/data-public.txt" \
    --application-name "p11card test" --application-id 1.3.6.1.4.1.99999.1 \
    --label "p11card public data" --pin "$PIN" --so-pin "$SO_PIN"
step "store a private data object (auth ID 01)" "${P15I[@]}" --store-data "$W/data-private.txt" \
    --application-name "p11card test" --label "p11card private data" --auth-id 01 \
    --pin "$PIN" --so-pin "$SO_PIN"
step "finalise (ACTIVATE APPLET)" "${P15I[@]}" --finalize --so-pin "$SO_PIN" --pin "$PIN"
finished=$(date +%s.%N)
cp -- "$MYEID_IMAGE" "$OUT_IMAGE"
# The CA certificate goes with the image (relying parties need it; the
# CA key is thrown away).
cp -- "$W/ca.pem" "${OUT_IMAGE%.image}.ca.pem"
awk -v a="$started" -v b="$gen_done" -v c="$certs_start" -v d="$finished" 'BEGIN {
    printf "personalise: pkcs15-init and pkcs15-tool took %.1f s (erase, create, PINs, 5 key generations: %.1f s; certificates + finalise: %.1f s)\n", (b-a)+(d-c), b-a, d-c }'
echo "personalise: card image saved to $OUT_IMAGE; public material in $W"
[ "${PERSONALISE_STOP:-0}" = 1 ] && "$HERE/stop.sh"
exit 0
