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

# slot_id SLOT: the PKCS#11 CKA_ID p11card gives the key (hex).
slot_id() {
    case "$1" in 9a) echo 01 ;; 9c) echo 02 ;; 9d) echo 03 ;; 9e) echo 04 ;; esac
}

# key_uri SLOT TYPE: a pkcs11: URI naming this card's token (by its label,
# the 9A certificate's CN) and the key's CKA_ID, so that a second card in
# another reader does not make the URI ambiguous.
key_uri() {
    local label
    label=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$(cert_cn 9a)")
    echo "pkcs11:token=$label;id=%$(slot_id "$1");type=$2"
}

summary() {
    printf '\n%d passed, %d failed\n' "$PASSED" "$FAILED"
    [ "$FAILED" -eq 0 ]
}
