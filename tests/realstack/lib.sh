# Helpers for the real-stack tests (sourced). Every external command runs
# under a timeout; what a test starts, it stops by PID.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
T="${T:-30}"   # seconds per external command
PASSED=0
FAILED=0

pass() { PASSED=$((PASSED + 1)); printf '  ok    %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf '  FAIL  %s\n' "$*"; }

# check NAME COMMAND...: runs the command under the timeout, reports.
check() {
    local name="$1"; shift
    local out
    if out=$(timeout "$T" "$@" 2>&1); then
        pass "$name"
    else
        fail "$name"
        printf '%s\n' "$out" | sed 's/^/        /' | tail -20
    fi
}

# check_fn NAME FUNCTION ARGS...: like check, for a shell function whose
# external commands carry their own timeouts.
check_fn() {
    local name="$1"; shift
    local out
    if out=$("$@" 2>&1); then
        pass "$name"
    else
        fail "$name"
        printf '%s\n' "$out" | sed 's/^/        /' | tail -20
    fi
}

# check_output NAME PATTERN COMMAND...: the command succeeds and prints PATTERN.
check_output() {
    local name="$1" pattern="$2"; shift 2
    local out
    if out=$(timeout "$T" "$@" 2>&1) && grep -qE -- "$pattern" <<<"$out"; then
        pass "$name"
    else
        fail "$name (wanted /$pattern/)"
        printf '%s\n' "$out" | sed 's/^/        /' | tail -20
    fi
}

# raw_to_der FILE_IN FILE_OUT: PKCS#11 ECDSA r||s to DER (for openssl).
raw_to_der() {
    python3 - "$1" "$2" <<'PY'
import sys
raw = open(sys.argv[1], "rb").read()
half = len(raw) // 2
def integer(b):
    b = b.lstrip(b"\0") or b"\0"
    if b[0] & 0x80:
        b = b"\0" + b
    return bytes([2, len(b)]) + b
body = integer(raw[:half]) + integer(raw[half:])
open(sys.argv[2], "wb").write(bytes([0x30, len(body)]) + body)
PY
}

# on_exit COMMAND...: run at the end of the current card's run (stop a
# server, remove a registered module). Suites use it for what they start.
CLEANUPS=()
on_exit() { CLEANUPS+=("$(printf '%q ' "$@")"); }
run_cleanups() {
    local i
    for ((i = ${#CLEANUPS[@]} - 1; i >= 0; i--)); do
        eval "${CLEANUPS[$i]}" >/dev/null 2>&1 || true
    done
    CLEANUPS=()
}

# stop_pid PID: TERM, wait up to 5 s, then KILL; only that process.
stop_pid() {
    local pid="$1"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

# wait_port PORT: until something listens on 127.0.0.1:PORT (10 s).
wait_port() {
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# free_port: a TCP port nobody listens on.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# key_kind SLOT (9a, 9c, ...): "rsa" or "ec" from the card's public key file.
key_kind() {
    if openssl pkey -pubin -in "$PROV/pub$1.pem" -noout -text 2>/dev/null | grep -q "ASN1 OID"; then
        echo ec
    else
        echo rsa
    fi
}

# key_bits SLOT: the key size in bits.
key_bits() {
    openssl pkey -pubin -in "$PROV/pub$1.pem" -noout -text 2>/dev/null | sed -n 's/.*Public-Key: (\([0-9]*\) bit).*/\1/p'
}

# cert_cn SLOT: the certificate subject's CN.
cert_cn() {
    openssl x509 -in "$PROV/cert$1.pem" -noout -subject -nameopt multiline | sed -n 's/^ *commonName *= *//p'
}

# What the suites need to know about the card in the reader, set by
# card_manifest (run.sh calls it after provisioning each card). Keys are
# named by their provisioned files ($PROV/pubNAME.pem, $PROV/certNAME.pem):
#   CARD_KEYS       every key with a certificate, in the module's order
#   SIGN_KEYS       the keys that sign once the user PIN is given
#                   (always-authenticate ones with the same PIN included)
#   TLS_KEYS        keys GnuTLS logs in with; ENGINE_KEYS: OpenSSL's engine
#   DECRYPT_KEYS    RSA keys that decrypt; DERIVE_KEYS: keys that may do ECDH
#   LOGIN_KEY       the key of logins (PAM, ssh): RSA, PIN-protected
#   EC_KEY          an EC key for ssh and p11-kit
#   AGENT_REFUSED_KEY  an always-authenticate key ssh-agent cannot use (or empty)
#   ALWAYS_AUTH_KEY an always-authenticate key that signs (or empty);
#                   ALWAYS_AUTH_PIN: its PIN (empty: the user PIN)
#   TOKEN_LABEL     the token label p11card shows; READER: the card's reader
#   KEY_LABEL[NAME] the CKA_LABEL p11card gives the key
#   CERT_COUNT      certificates the token shows (default: one per key in
#                   CARD_KEYS); PUBLIC_KEY_COUNT: public keys a consumer
#                   finds (keys without certificate and CA certificates too)
#   BAD_LENGTH_PIN  a PIN shorter than the card allows; PUK: the unblocking code
#   LEGACY_RSA_KEY  an RSA key shorter than 2048 bits (or empty)
# A card's provisioning may write $PROV/manifest.sh to set these (the
# PKCS#15 card does); otherwise the family's defaults below apply.
declare -gA KEY_LABEL=()
declare -gA KEY_ID=()
card_manifest() {
    KEY_LABEL=()
    KEY_ID=()
    CERT_COUNT="" PUBLIC_KEY_COUNT="" LEGACY_RSA_KEY="" ALWAYS_AUTH_KEY="" ALWAYS_AUTH_PIN=""
    case "$CARD_FAMILY" in
        pkcs15)
            CARD_KEYS="01 02 05" SIGN_KEYS="01 02" TLS_KEYS="01 02" ENGINE_KEYS="01 02"
            DECRYPT_KEYS="01" DERIVE_KEYS="05" LOGIN_KEY=01 EC_KEY=02 AGENT_REFUSED_KEY=""
            TOKEN_LABEL="p11card MyEID" READER="Virtual PCD MyEID 00 00" BAD_LENGTH_PIN=123 PUK=12345678
            KEY_LABEL=([01]="MyEID RSA" [02]="MyEID EC" [05]="MyEID ECDH")
            ;;
        piv)
            CARD_KEYS="9a 9c 9d 9e" SIGN_KEYS="9a 9c 9d 9e" TLS_KEYS="9a 9e 9c" ENGINE_KEYS="9a 9e"
            DECRYPT_KEYS="9a 9d" DERIVE_KEYS="9d" LOGIN_KEY=9a EC_KEY=9e AGENT_REFUSED_KEY=9c ALWAYS_AUTH_KEY=9c
            TOKEN_LABEL="$(cert_cn 9a)" READER="Virtual PCD 00 00" BAD_LENGTH_PIN=12345 PUK=12345678
            KEY_LABEL=([9a]="PIV Authentication" [9c]="Digital Signature" [9d]="Key Management" [9e]="Card Authentication")
            KEY_ID=([9a]=01 [9c]=02 [9d]=03 [9e]=04)
            ;;
        *)
            # (the OpenPGP suite knows its card itself)
            CARD_KEYS="" SIGN_KEYS="" TLS_KEYS="" ENGINE_KEYS="" DECRYPT_KEYS="" DERIVE_KEYS="" LOGIN_KEY="" EC_KEY=""
            AGENT_REFUSED_KEY="" TOKEN_LABEL="" READER="" BAD_LENGTH_PIN="" PUK=""
            ;;
    esac
    # shellcheck source=/dev/null
    [ ! -f "$PROV/manifest.sh" ] || source "$PROV/manifest.sh"
    # Another module on the same card (for comparisons: OpenSC names a
    # PKCS#15 token "<label> (<PIN label>)") may need another label.
    TOKEN_LABEL="${P11CARD_REALSTACK_TOKEN_LABEL:-$TOKEN_LABEL}"
    read -r -a CARD_KEY_LIST <<<"$CARD_KEYS"
    CARD_KEY_COUNT=${#CARD_KEY_LIST[@]}
    CERT_COUNT="${CERT_COUNT:-$CARD_KEY_COUNT}"
    PUBLIC_KEY_COUNT="${PUBLIC_KEY_COUNT:-$CARD_KEY_COUNT}"
}

# slot_id KEY: the PKCS#11 CKA_ID p11card gives the key (hex): the PIV
# slot's ID, or the key's name (a PKCS#15 iD).
slot_id() {
    echo "${KEY_ID[$1]:-$1}"
}

# key_uri KEY TYPE: a pkcs11: URI naming this card's token (by its label)
# and the key's CKA_ID, so that a second card in another reader does not
# make the URI ambiguous.
key_uri() {
    local label
    label=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$TOKEN_LABEL")
    echo "pkcs11:token=$label;id=%$(slot_id "$1");type=$2"
}

# readme_recipe NAME [SED-EXPRESSION...]: the README's shell block marked
# "<!-- recipe: NAME -->", with the installed module path replaced by the
# module under test (unless that is the installed one), `p11card` by the
# built command, the example key URI by this card's login key, and each
# further sed expression applied (a test's own site, CA, ...).
readme_recipe() {
    local name="$1"; shift
    local cli="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/p11card"
    [ -x /usr/bin/p11card ] && [ "$MODULE" = /usr/lib/x86_64-linux-gnu/pkcs11/p11card-pkcs11.so ] && cli=/usr/bin/p11card
    local uri
    uri="$(key_uri "$LOGIN_KEY" cert)"
    uri="${uri%;type=cert}"
    local edits=(-e "s|/usr/lib/x86_64-linux-gnu/pkcs11/p11card-pkcs11.so|$MODULE|g"
        -e "s|^p11card |$cli |; s|\([;&|] *\)p11card |\1$cli |g"
        -e "s|pkcs11:token=My%20Card;id=%01|$uri|g"
        -e "s|--id 01 |--id $(slot_id "$LOGIN_KEY") |g")
    local expression
    for expression in "$@"; do edits+=(-e "$expression"); done
    awk -v want="<!-- recipe: $name -->" '
        $0 == want { found = 1; next }
        found && /^```/ { if (inside) exit; inside = 1; next }
        inside { print }' "$REPO_ROOT/README.md" | sed "${edits[@]}"
}

# run_recipe FILE: runs a recipe on a terminal of its own, typing the PIN
# when it asks (type-pin.py); prints what it printed and its exit status.
run_recipe() {
    local out rc=0
    [ -s "$1" ] || { echo "no such recipe in README.md"; return 1; }
    out=$(cd "$WORK" && TYPED_PIN="$PIN" timeout 120 python3 "$REPO_ROOT/tests/realstack/type-pin.py" bash -e "$1" 2>&1) || rc=$?
    printf '%s\n(exit %s)\n' "$out" "$rc"
    return "$rc"
}

summary() {
    printf '\n%d passed, %d failed\n' "$PASSED" "$FAILED"
    [ "$FAILED" -eq 0 ]
}
