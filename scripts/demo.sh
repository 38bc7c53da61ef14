#!/usr/bin/env bash
# The main job, end to end on one machine with no hardware: a smart card in a
# reader, PIN login, and an on-card signature used for a client-certificate
# login to an HTTPS server.
#
#   scripts/demo.sh            # the project's simulated PIV card in a virtual reader
#   scripts/demo.sh virtpiv    # the independent virtual PIV card (../shared/virtpiv)
#   scripts/demo.sh pkcs15     # a simulated MyEID card (PKCS#15) personalised by
#                              # OpenSC's pkcs15-init
#
# It installs what it needs (Debian 12, root or sudo), builds p11card, starts
# pcscd and the virtual card, runs the login, and stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
CARD="${1:-own}"
PIN=123456

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
detail() { printf '   %s\n' "$*"; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/p11card-demo.XXXXXX")"
export VIRTPIV_RUN_DIR="$WORK/run" VIRTPIV_STATE_DIR="$WORK/state"
# The login key: its provisioned certificate, its CKA_ID, how to name it.
case "$CARD" in
    own | virtpiv)
        [ "$CARD" = own ] && CARD_DIR="$ROOT/tests/realstack/owncard" || CARD_DIR="${P11CARD_VIRTPIV:-$ROOT/../shared/virtpiv}"
        CARD_KIND="PIV card" LOGIN_CERT=cert9a.pem LOGIN_ID=01 LOGIN_NAME="the PIV Authentication key (slot 9A)" ;;
    pkcs15)
        CARD_DIR="$ROOT/tests/realstack/pkcs15"
        CARD_KIND="MyEID card (PKCS#15, files written by OpenSC's pkcs15-init)"
        LOGIN_CERT=cert01.pem LOGIN_ID=01 LOGIN_NAME="the RSA key with PKCS#15 iD 01" ;;
    *) echo "usage: $0 [own|virtpiv|pkcs15]" >&2; exit 2 ;;
esac
SERVER_PID=""
cleanup() {
    say "Cleaning up: stopping the HTTPS server, the virtual card and pcscd (only what this demo started)."
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    timeout 60 "$CARD_DIR/stop.sh" >/dev/null 2>&1 || true
    rm -rf -- "$WORK"
}
trap cleanup EXIT

say "1. Installing what the demo needs (PC/SC service, virtual reader, GnuTLS, OpenSSL)..."
scripts/setup-debian.sh >"$WORK/setup.log" 2>&1 || { cat "$WORK/setup.log"; exit 1; }
detail "done (log: setup.log)"

say "2. Building p11card (the PKCS#11 module) in release mode..."
cargo build --release --locked -q -p p11card-pkcs11
MODULE="$ROOT/target/release/libp11card_pkcs11.so"
detail "module: $MODULE"

say "3. Starting the smart-card service (pcscd) and inserting a virtual $CARD_KIND into a virtual reader..."
timeout 600 "$CARD_DIR/start.sh" --fresh >"$WORK/card.log" 2>&1 || { cat "$WORK/card.log"; exit 1; }
timeout 120 "$CARD_DIR/provision.sh" >>"$WORK/card.log" 2>&1 || { cat "$WORK/card.log"; exit 1; }
PROV="$VIRTPIV_STATE_DIR/provisioned"
TOKENS=$(timeout 30 pkcs11-tool --module "$MODULE" -L 2>/dev/null || true)
sed -n 's/^\(Slot .*\|  token label.*\|  serial num.*\)$/   \1/p' <<<"$TOKENS"
TOKEN_LABEL=$(sed -n '0,/^ *token label *: /s/^ *token label *: //p' <<<"$TOKENS" | sed 's/ *$//')

say "4. What p11card finds on the card (no PIN needed to look):"
timeout 30 pkcs11-tool --module "$MODULE" -O --type cert 2>/dev/null | sed -n 's/^  subject: *DN: /   certificate: /p'
CN=$(openssl x509 -in "$PROV/$LOGIN_CERT" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
detail "The login will use $LOGIN_NAME, certificate: $CN"

say "5. Starting a local HTTPS server that only lets in clients holding a certificate from the card's issuer..."
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=localhost" \
    -keyout "$WORK/server.key" -out "$WORK/server.pem" >/dev/null 2>&1
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
timeout 300 openssl s_server -accept "$PORT" -cert "$WORK/server.pem" -key "$WORK/server.key" \
    -CAfile "$PROV/ca.pem" -Verify 1 -verify_return_error -www >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
detail "https://localhost:$PORT/ (requires a client certificate)"

say "6. Logging in with the card: the client asks p11card for the card's certificate and key,"
detail "p11card sends the PIN ($PIN) to the card, and the card signs the TLS 1.3 handshake."
detail "The private key never leaves the card."
LABEL=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$TOKEN_LABEL")
printf 'GET / HTTP/1.0\r\n\r\n' | GNUTLS_PIN="$PIN" timeout 60 gnutls-cli --provider "$MODULE" \
    --x509certfile "pkcs11:token=$LABEL;id=%$LOGIN_ID;type=cert" --x509keyfile "pkcs11:token=$LABEL;id=%$LOGIN_ID;type=private" \
    --x509cafile "$WORK/server.pem" --priority "NORMAL:-VERS-ALL:+VERS-TLS1.3" -p "$PORT" localhost \
    >"$WORK/client.log" 2>&1 || { cat "$WORK/client.log"; exit 1; }
detail "$(grep -m1 -- '- Description:' "$WORK/client.log" | sed 's/^- //')"

say "7. The server's answer names the certificate the card presented:"
SUBJECT=$(grep -m1 'Subject: ' "$WORK/client.log" | sed 's/^ *Subject: //')
ISSUER=$(grep -m1 'Issuer: ' "$WORK/client.log" | sed 's/^ *Issuer: //')
[ -n "$SUBJECT" ] || { echo "the server did not report a client certificate" >&2; cat "$WORK/client.log"; exit 1; }
detail "client certificate subject: $SUBJECT"
detail "issued by:                  $ISSUER"
say "Logged in with the smart card."
