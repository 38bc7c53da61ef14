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

summary() {
    printf '\n%d passed, %d failed\n' "$PASSED" "$FAILED"
    [ "$FAILED" -eq 0 ]
}
