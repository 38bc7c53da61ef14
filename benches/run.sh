#!/usr/bin/env bash
# Benchmarks (issue 7): p11card against OpenSC's opensc-pkcs11.so (file cache
# off and on) and Yubico's libykcs11.so on the same virtual PIV card
# (../shared/virtpiv) in the real stack (pcscd + vpcd), plus p11card's own
# cost per C_Sign on the simulated card (criterion) and the memory a module
# adds. Prints one Markdown report; see README "Benchmarks".
#
#   benches/run.sh [-n RUNS] [MODULE.so]
#
# APDUs are counted at the card (virtpiv's APDU trace), so the count does
# not depend on the module. Wall times are min/median of RUNS processes
# (default 5), once without card latency and once with virtpiv's latency
# model (VIRTPIV_DELAY_US=3000,90, about a contact card at 115200 baud).
#
# Environment (all optional):
#   P11CARD_BENCH_RUNS=N            runs per measurement (default 5; -n wins)
#   P11CARD_BENCH_DELAYS="0 3000,90" card latency settings to run
#   P11CARD_BENCH_MODULES="p11card opensc ykcs11"   which modules
#   P11CARD_BENCH_ENV="VAR=v ..."   extra environment for every module process
#   P11CARD_BENCH_ENV_P11CARD / _OPENSC / _YKCS11="VAR=v ..."   per module
#                                   (e.g. to switch a module's cache off)
#   P11CARD_BENCH_CRITERION_SECS=2  criterion measurement time per benchmark
#   P11CARD_BENCH_THREAD_SECS=2     duration of each steady-rate run
#   P11CARD_BENCH_SKIP_CRITERION=1  real stack only
#   P11CARD_BENCH_PKCS15=0          skip the PKCS#15 rows (the simulated MyEID
#                                   card of tests/realstack/pkcs15/)
#   P11CARD_BENCH_ISOLATE=auto|1|0  run the real stack in private namespaces
#                                   (own pcscd socket, own loopback: other
#                                   runs on this machine neither see nor
#                                   disturb it); auto = when unshare works
#   P11CARD_BENCH_WAIT=600          without isolation: seconds to wait for
#                                   another run's pcscd to go away
#   P11CARD_BENCH_OUT=FILE          also write the report there
#                                   (default target/bench/report.md)
#   P11CARD_VIRTPIV=DIR             the virtual card (default ../shared/virtpiv)
#   T=60                            seconds allowed for each external command
#
# "cold" = the module's caches are emptied before each process: every module
# process gets a private HOME (XDG_CACHE_HOME=$HOME/.cache, OpenSC's
# file_cache_dir=$HOME/.cache/opensc) and that directory is wiped.
# "warm" = the same command ran once (not measured) and nothing was wiped.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
T="${T:-60}"
PIN=123456

# ----- options -----------------------------------------------------------------
INNER=""
RUNS="${P11CARD_BENCH_RUNS:-5}"
MODULE_ARG=""
while [ $# -gt 0 ]; do
    case "$1" in
        -n | --runs) RUNS="$2"; shift 2 ;;
        --inner) INNER="$2"; shift 2 ;; # internal: the real-stack part, in $2
        -h | --help) sed -n '2,38p' "$0"; exit 0 ;;
        -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
        *) MODULE_ARG="$1"; shift ;;
    esac
done
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: RUNS must be a positive number" >&2; exit 2; }
DELAYS="${P11CARD_BENCH_DELAYS:-0 3000,90}"
MODULES="${P11CARD_BENCH_MODULES:-p11card opensc ykcs11}"
VIRTPIV="$(realpath -m "${P11CARD_VIRTPIV:-$REPO/../shared/virtpiv}")"
P11CARD_SO="$(realpath -m "${MODULE_ARG:-$REPO/target/release/libp11card_pkcs11.so}")"
OPENSC_SO="${OPENSC_PKCS11:-/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so}"
YKCS11_SO="${YKCS11_PKCS11:-/usr/lib/x86_64-linux-gnu/libykcs11.so}"
EXAMPLES="$REPO/target/release/examples"

say() { printf '%s\n' "$*" >&2; }
has_module() { [[ " $MODULES " == *" $1 "* ]]; }

# ----- the real-stack part (possibly inside private namespaces) ----------------
# Writes result lines to $WORK/results.txt:
#   row|DELAY|VARIANT|ROW|apdus min|median|max|wall µs min|median|failed runs
#   insession|DELAY|VARIANT|RESULT line of login_sign_probe
#   rss|VARIANT|RESULT line of rss_probe
inner() {
    WORK="$1"
    RESULTS="$WORK/results.txt"
    : >"$RESULTS"
    export VIRTPIV_RUN_DIR="$WORK/run" VIRTPIV_STATE_DIR="$WORK/state"
    TRACE="$VIRTPIV_RUN_DIR/apdu.log"
    unset VIRTPIV_TRACE VIRTPIV_DELAY_US VIRTPIV_READER VIRTPIV_READER_LABEL VIRTPIV_SHORT_AID
    if [ "${P11CARD_BENCH_IN_NS:-0}" = 1 ]; then
        # A private loopback for vpcd's ports and a private /run/pcscd for
        # pcscd's socket; the PID namespace ends whatever is left at exit.
        timeout 10 ip link set lo up
        mkdir -p /run/pcscd
        timeout 10 mount -t tmpfs -o mode=0755 tmpfs /run/pcscd
    fi
    head -c 32 /dev/zero | tr '\0' 'x' >"$WORK/in32"

    CARD_UP=0
    OWNCARD_UP=0
    trap 'card_stop; owncard_stop; myeid_stop' EXIT
    local first=1 delay
    for delay in $DELAYS; do
        if has_module p11card || has_module opensc; then
            card_start "" "" "$delay" "$first"
            first=0
            has_module p11card && measure_module p11card "$P11CARD_SO" "$delay"
            if has_module opensc; then
                measure_module opensc-nocache "$OPENSC_SO" "$delay"
                measure_module opensc-cache "$OPENSC_SO" "$delay"
            fi
            card_stop
        fi
        if has_module ykcs11; then
            # ykcs11 only uses readers named "Yubico…" and selects PIV by the
            # 5-byte RID: a pcscd with a renamed reader, and the short AID.
            card_start "Yubico virtpiv" 1 "$delay" "$first"
            first=0
            measure_module ykcs11 "$YKCS11_SO" "$delay"
            card_stop
        fi
    done
    # The disk cache needs a card that can prove its public data unchanged,
    # which virtpiv cannot (its CHUID is the same on every card, unsigned,
    # and GET METADATA gives no public keys): p11card's simulated card in
    # vpcd, once answering GET METADATA like a YubiKey 5, once with a
    # signed CHUID like an issued PIV card.
    if has_module p11card; then
        local proof
        for delay in $DELAYS; do
            for proof in metadata signed; do
                owncard_start "$delay" "$proof"
                measure_cache_rows "p11card@$proof" "$P11CARD_SO" "$delay"
                [ "$proof" = signed ] && has_module opensc &&
                    measure_cache_rows "opensc-cache@$proof" "$OPENSC_SO" "$delay"
                owncard_stop
            done
        done
    fi
    # A PKCS#15 card: p11card's simulated MyEID card as OpenSC's pkcs15-init
    # personalised it (tests/realstack/pkcs15/), OpenSC's own myeid driver
    # for comparison. p11card's disk cache works there through the card's
    # change counter (cardprofiles/myeid.toml).
    if [ "${P11CARD_BENCH_PKCS15:-1}" = 1 ] && { has_module p11card || has_module opensc; }; then
        for delay in $DELAYS; do
            myeid_start "$delay" || continue
            has_module p11card && measure_pkcs15_rows "p11card@myeid" "$P11CARD_SO" "$delay"
            if has_module opensc; then
                measure_pkcs15_rows "opensc-nocache@myeid" "$OPENSC_SO" "$delay"
                measure_pkcs15_rows "opensc-cache@myeid" "$OPENSC_SO" "$delay"
            fi
            myeid_stop
        done
    fi
}

# myeid_start DELAY: pcscd + the simulated MyEID card (a fresh copy of the
# personalised image), tracing into the same $TRACE.
MYEID_UP=0
myeid_start() {
    local delay="$1"
    say "run.sh: starting the simulated MyEID card (delay ${delay}) ..."
    MYEID_RUN_DIR="$WORK/myeid" MYEID_TRACE="$TRACE" OWNCARD_BIN="$REPO/target/release/cardsim-vpcd" \
        MYEID_DELAY_US="$([ "$delay" = 0 ] || echo "$delay")" \
        timeout 120 "$REPO/tests/realstack/pkcs15/start.sh" >>"$WORK/card.log" 2>&1 ||
        { say "run.sh: the MyEID card did not start (see $WORK/card.log)"; return 1; }
    MYEID_UP=1
}

myeid_stop() {
    if [ "${MYEID_UP:-0}" = 1 ]; then
        MYEID_RUN_DIR="$WORK/myeid" timeout 60 "$REPO/tests/realstack/pkcs15/stop.sh" >>"$WORK/card.log" 2>&1 || true
        MYEID_UP=0
    fi
}

# measure_pkcs15_rows VARIANT MODULE DELAY: the MyEID card's rows (its RSA
# key has iD 01, its EC key iD 02, as on the PIV cards).
measure_pkcs15_rows() {
    local variant="$1" so="$2" delay="$3"
    [ -f "$so" ] || return 0
    module_env "$variant"
    say "run.sh: $variant (delay $delay): PKCS#15 rows x $RUNS runs"
    local p11=(pkcs11-tool --module "$so")
    local sign=(--login --pin "$PIN" --sign -i "$WORK/in32" -o "$WORK/sig")
    measure "$delay" "$variant" objects-cold cold "${p11[@]}" -O
    measure "$delay" "$variant" objects-warm warm "${p11[@]}" -O
    measure "$delay" "$variant" sign-ec-cold cold "${p11[@]}" "${sign[@]}" --id 02 -m ECDSA
    measure "$delay" "$variant" sign-ec-warm warm "${p11[@]}" "${sign[@]}" --id 02 -m ECDSA
    measure "$delay" "$variant" sign-rsa-warm warm "${p11[@]}" "${sign[@]}" --id 01 -m RSA-PKCS
}

# owncard_start DELAY metadata|signed: pcscd + p11card's simulated PIV card
# (cardsim-vpcd), tracing into the same $TRACE.
owncard_start() {
    local delay="$1" proof="$2"
    unset VIRTPIV_READER_LABEL VIRTPIV_SHORT_AID VIRTPIV_DELAY_US
    READER="Virtual PCD 00 00"
    say "run.sh: starting the simulated card ($proof, delay ${delay}) ..."
    OWNCARD_BIN="$REPO/target/release/cardsim-vpcd" OWNCARD_TRACE="$TRACE" \
        OWNCARD_DELAY_US="$([ "$delay" = 0 ] || echo "$delay")" \
        OWNCARD_SIGNED_CHUID="$([ "$proof" = signed ] && echo 1 || echo 0)" \
        timeout 120 "$REPO/tests/realstack/owncard/start.sh" >>"$WORK/card.log" 2>&1 ||
        { say "run.sh: the simulated card did not start (see $WORK/card.log)"; return 1; }
    OWNCARD_UP=1
}

owncard_stop() {
    if [ "${OWNCARD_UP:-0}" = 1 ]; then
        timeout 60 "$REPO/tests/realstack/owncard/stop.sh" >>"$WORK/card.log" 2>&1 || true
        OWNCARD_UP=0
    fi
}

# measure_cache_rows VARIANT MODULE DELAY: the rows a disk cache changes.
measure_cache_rows() {
    local variant="$1" so="$2" delay="$3"
    [ -f "$so" ] || return 0
    module_env "$variant"
    say "run.sh: $variant (delay $delay): cache rows x $RUNS runs"
    local p11=(pkcs11-tool --module "$so")
    local sign=(--login --pin "$PIN" --sign -i "$WORK/in32" -o "$WORK/sig")
    measure "$delay" "$variant" objects-cold cold "${p11[@]}" -O
    measure "$delay" "$variant" objects-warm warm "${p11[@]}" -O
    measure "$delay" "$variant" sign-ec-warm warm "${p11[@]}" "${sign[@]}" --id 02 -m ECDSA
    measure "$delay" "$variant" sign-rsa-warm warm "${p11[@]}" "${sign[@]}" --id 01 -m RSA-PKCS
}

# card_start READER_LABEL SHORT_AID DELAY FRESH: starts pcscd + the card with
# our private run/state directories (fresh and provisioned the first time).
card_start() {
    local label="$1" short="$2" delay="$3" fresh="$4" deadline
    if [ -n "$label" ]; then export VIRTPIV_READER_LABEL="$label"; else unset VIRTPIV_READER_LABEL; fi
    if [ -n "$short" ]; then export VIRTPIV_SHORT_AID=1; else unset VIRTPIV_SHORT_AID; fi
    if [ "$delay" != 0 ]; then export VIRTPIV_DELAY_US="$delay"; else unset VIRTPIV_DELAY_US; fi
    READER="${label:-Virtual PCD} 00 00"
    deadline=$((SECONDS + ${P11CARD_BENCH_WAIT:-600}))
    while :; do
        if [ "${P11CARD_BENCH_IN_NS:-0}" != 1 ] && pidof pcscd >/dev/null 2>&1; then
            # Another run's pcscd (start.sh could not rename the reader, and
            # its card may sit in our vpcd slot): wait for it to go.
            if [ "$SECONDS" -ge "$deadline" ]; then
                say "run.sh: a pcscd of another run is still running; giving up"
                return 1
            fi
            say "run.sh: waiting for another run's pcscd (pid $(pidof pcscd)) to stop"
            sleep 5
            continue
        fi
        local args=()
        [ "$fresh" = 1 ] && args=(--fresh)
        say "run.sh: starting the card (reader '$READER', delay ${delay}) ..."
        if timeout 600 "$VIRTPIV/start.sh" "${args[@]}" >>"$WORK/card.log" 2>&1 && our_card_answers; then
            CARD_UP=1
            break
        fi
        timeout 60 "$VIRTPIV/stop.sh" >>"$WORK/card.log" 2>&1 || true
        if [ "$SECONDS" -ge "$deadline" ]; then
            say "run.sh: the card did not start (see $WORK/card.log)"
            tail -n 20 "$WORK/card.log" >&2
            return 1
        fi
        say "run.sh: the card did not start or another card holds the vpcd port; retrying in 5 s"
        sleep 5
    done
    if [ "$fresh" = 1 ]; then
        timeout 300 "$VIRTPIV/provision.sh" >>"$WORK/card.log" 2>&1 ||
            { say "run.sh: provisioning failed (see $WORK/card.log)"; return 1; }
    fi
}

# The card in $READER is ours: an APDU sent to it shows in our trace.
our_card_answers() {
    local before after
    [ -f "$TRACE" ] || return 1
    before=$(apdus)
    timeout "$T" opensc-tool -r "$READER" -s 00:A4:04:00:09:A0:00:00:03:08:00:00:10:00 >/dev/null 2>&1 || return 1
    after=$(apdus)
    [ "$after" -gt "$before" ]
}

card_stop() {
    if [ "${CARD_UP:-0}" = 1 ]; then
        timeout 60 "$VIRTPIV/stop.sh" >>"$WORK/card.log" 2>&1 || true
        CARD_UP=0
    fi
}

apdus() { grep -c ' APDU ' "$TRACE" 2>/dev/null || true; }

# The environment of one module's processes (private HOME and caches).
module_env() { # VARIANT
    local home="$WORK/home-$1" extra=""
    mkdir -p "$home/.cache"
    MENV=(HOME="$home" XDG_CACHE_HOME="$home/.cache")
    case "${1%@*}" in
        p11card) extra="${P11CARD_BENCH_ENV_P11CARD:-}" ;;
        opensc-*)
            extra="${P11CARD_BENCH_ENV_OPENSC:-}"
            local caching=no
            [ "${1%@*}" = opensc-cache ] && caching=yes
            cat >"$home/opensc.conf" <<CONF
app default {
    framework pkcs15 {
        use_file_caching = $caching;
        file_cache_dir = $home/.cache/opensc;
    }
}
CONF
            MENV+=(OPENSC_CONF="$home/opensc.conf")
            ;;
        ykcs11) extra="${P11CARD_BENCH_ENV_YKCS11:-}" ;;
    esac
    local word
    for word in ${P11CARD_BENCH_ENV:-} $extra; do MENV+=("$word"); done
    COLD_DIR="$home/.cache"
}

cold() { rm -rf -- "${COLD_DIR:?}"; mkdir -p "$COLD_DIR"; }

# measure DELAY VARIANT ROW STATE CMD...: RUNS processes; STATE cold|warm.
measure() {
    local delay="$1" variant="$2" row="$3" state="$4"
    shift 4
    local a=() t=() fails=0 i before after t0 t1
    if [ "$state" = warm ]; then
        timeout "$T" env "${MENV[@]}" "$@" >"$WORK/out" 2>&1 || true
    fi
    for ((i = 0; i < RUNS; i++)); do
        [ "$state" = cold ] && cold
        before=$(apdus)
        t0=$(date +%s%N)
        timeout "$T" env "${MENV[@]}" "$@" >"$WORK/out" 2>&1 || fails=$((fails + 1))
        t1=$(date +%s%N)
        after=$(apdus)
        a+=($((after - before)))
        t+=($(((t1 - t0) / 1000)))
    done
    if [ "$fails" -gt 0 ]; then
        say "  $variant $row: $fails of $RUNS runs failed:"
        tail -n 3 "$WORK/out" | sed 's/^/      /' >&2
    fi
    local as=() ts=() mid=$(((RUNS + 1) / 2))
    mapfile -t as < <(printf '%s\n' "${a[@]}" | sort -n)
    mapfile -t ts < <(printf '%s\n' "${t[@]}" | sort -n)
    echo "row|$delay|$variant|$row|${as[0]}|${as[$((mid - 1))]}|${as[$((RUNS - 1))]}|${ts[0]}|${ts[$((mid - 1))]}|$fails" >>"$RESULTS"
}

measure_module() { # VARIANT MODULE DELAY
    local variant="$1" so="$2" delay="$3"
    [ -f "$so" ] || { say "run.sh: no module $so; skipping $variant"; return 0; }
    module_env "$variant"
    say "run.sh: $variant (delay $delay): pkcs11-tool rows x $RUNS runs"
    local p11=(pkcs11-tool --module "$so")
    local sign=(--login --pin "$PIN" --sign -i "$WORK/in32" -o "$WORK/sig")
    measure "$delay" "$variant" init cold "${p11[@]}" -I
    measure "$delay" "$variant" slots cold "${p11[@]}" -L
    measure "$delay" "$variant" objects-cold cold "${p11[@]}" -O
    measure "$delay" "$variant" objects-warm warm "${p11[@]}" -O
    measure "$delay" "$variant" sign-ec-cold cold "${p11[@]}" "${sign[@]}" --id 02 -m ECDSA
    measure "$delay" "$variant" sign-ec-warm warm "${p11[@]}" "${sign[@]}" --id 02 -m ECDSA
    measure "$delay" "$variant" sign-rsa-cold cold "${p11[@]}" "${sign[@]}" --id 01 -m RSA-PKCS
    measure "$delay" "$variant" sign-rsa-warm warm "${p11[@]}" "${sign[@]}" --id 01 -m RSA-PKCS
    say "run.sh: $variant (delay $delay): login + sign in one process"
    local line
    while IFS= read -r line; do
        echo "insession|$delay|$variant|$line" >>"$RESULTS"
    done < <(timeout "$T" env "${MENV[@]}" "$EXAMPLES/login_sign_probe" "$so" "$TRACE" "$RUNS" 2>&1 |
        sed -n 's/^RESULT insession //p')
    if [ "$delay" = 0 ]; then
        while IFS= read -r line; do
            echo "rss|$variant|$line" >>"$RESULTS"
        done < <(timeout "$T" env "${MENV[@]}" "$EXAMPLES/rss_probe" "$so" 2>&1 |
            sed -n 's/^RESULT rss //p')
    fi
}

if [ -n "$INNER" ]; then
    inner "$INNER"
    exit 0
fi

# ----- the outer part: build, criterion, the real stack, the report -------------
STARTED=$SECONDS
[ -x "$VIRTPIV/start.sh" ] || { echo "run.sh: no virtual card at ${P11CARD_VIRTPIV:-$REPO/../shared/virtpiv}" >&2; exit 1; }

need=()
for p in pcscd vsmartcard-vpcd pcsc-tools opensc opensc-pkcs11 openssl xxd python3; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if has_module ykcs11; then
    dpkg-query -W -f='${Status}' ykcs11 2>/dev/null | grep -q "install ok installed" || need+=(ykcs11)
fi
if [ ${#need[@]} -gt 0 ]; then
    say "run.sh: installing ${need[*]}"
    as_root=()
    [ "$(id -u)" -ne 0 ] && as_root=(sudo)
    timeout 600 "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${need[@]}" >&2 || {
        timeout 600 "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -q >&2
        timeout 600 "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${need[@]}" >&2
    }
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/p11card-bench.XXXXXX")"
trap 'rm -rf -- "$WORK"' EXIT

say "run.sh: building (release) ..."
BUILD_STARTED=$SECONDS
(cd "$REPO" && timeout 3600 cargo build --release --locked -p p11card-pkcs11 \
    --example rss_probe --example login_sign_probe >&2)
(cd "$REPO" && timeout 3600 cargo build --release --locked -p p11card-cardsim --bin cardsim-vpcd >&2)
[ -n "$MODULE_ARG" ] || (cd "$REPO" && timeout 3600 cargo build --release --locked -p p11card-pkcs11 --lib >&2)
if [ "${P11CARD_BENCH_SKIP_CRITERION:-0}" != 1 ]; then
    (cd "$REPO" && timeout 3600 cargo bench --locked -p p11card-pkcs11 --bench sign_overhead --no-run >&2)
fi
BUILD_SECS=$((SECONDS - BUILD_STARTED))
if [ -n "$MODULE_ARG" ]; then
    rev="module $P11CARD_SO"
else
    rev="p11card $(cd "$REPO" && timeout 10 git describe --always --dirty 2>/dev/null || echo "?")"
fi
[ -f "$P11CARD_SO" ] || { echo "run.sh: no module at $P11CARD_SO" >&2; exit 1; }

if [ "${P11CARD_BENCH_SKIP_CRITERION:-0}" != 1 ]; then
    secs="${P11CARD_BENCH_CRITERION_SECS:-2}"
    say "run.sh: criterion: module overhead per C_Sign on the simulated card (${secs} s each) ..."
    (cd "$REPO" && P11CARD_BENCH_THREAD_SECS="${P11CARD_BENCH_THREAD_SECS:-2}" timeout 900 \
        cargo bench --locked -p p11card-pkcs11 --bench sign_overhead -- \
        --warm-up-time 1 --measurement-time "$secs" --noplot >"$WORK/criterion.txt" 2>&1) ||
        { tail -n 30 "$WORK/criterion.txt" >&2; echo "run.sh: criterion failed" >&2; exit 1; }
fi

isolate="${P11CARD_BENCH_ISOLATE:-auto}"
if [ "$isolate" = auto ]; then
    isolate=0
    timeout 10 unshare --mount --pid --fork --mount-proc --net true >/dev/null 2>&1 && isolate=1
fi
say "run.sh: real stack (isolated namespaces: $([ "$isolate" = 1 ] && echo yes || echo no)), $RUNS runs per row ..."
self=("$HERE/run.sh" -n "$RUNS" --inner "$WORK")
[ -n "$MODULE_ARG" ] && self+=("$P11CARD_SO")
if [ "$isolate" = 1 ]; then
    P11CARD_BENCH_IN_NS=1 timeout 3600 unshare --mount --pid --fork --mount-proc --net -- "${self[@]}"
else
    P11CARD_BENCH_IN_NS=0 timeout 3600 "${self[@]}"
fi

# ----- the report ------------------------------------------------------------------
cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }
OUT="${P11CARD_BENCH_OUT:-$REPO/target/bench/report.md}"
mkdir -p "$(dirname "$OUT")"
timeout 60 python3 - "$WORK/results.txt" "$WORK/criterion.txt" "$RUNS" "$DELAYS" >"$WORK/report.md" <<'PY'
import sys

results, criterion, runs, delays = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].split()
rows, insession, rss = {}, {}, {}
for line in open(results):
    kind, rest = line.rstrip("\n").split("|", 1)
    if kind == "row":
        delay, variant, row, amin, amed, amax, tmin, tmed, fails = rest.split("|")
        rows[(delay, variant, row)] = dict(amin=int(amin), amed=int(amed), amax=int(amax),
                                           tmin=int(tmin), tmed=int(tmed), fails=int(fails))
    elif kind == "insession":
        delay, variant, fields = rest.split("|", 2)
        kv = dict(f.split("=", 1) for f in fields.split())
        insession[(delay, variant, kv.get("job"))] = kv
    elif kind == "rss":
        variant, fields = rest.split("|", 1)
        rss[variant] = dict(f.split("=", 1) for f in fields.split())

variants = [v for v in ["p11card", "opensc-nocache", "opensc-cache", "ykcs11"]
            if any(k[1] == v for k in list(rows) + list(insession)) or v in rss]
title = {"p11card": "p11card", "opensc-nocache": "OpenSC, file cache off",
         "opensc-cache": "OpenSC, file cache on", "ykcs11": "ykcs11"}

def ms(us):
    us = int(us)
    return f"{us / 1000:.0f}" if us >= 100_000 else f"{us / 1000:.1f}"

def apdu_text(lo, hi):
    return f"**{lo}**" if lo == hi else f"**{lo}**–{hi}"

def cell(get):
    found = [get(d) for d in delays]
    counted = [f for f in found if f is not None and f[0] is not None]
    if all(f is None for f in found):
        return "–"
    parts = []
    if counted:
        parts.append(apdu_text(min(f[0] for f in counted), max(f[1] for f in counted)))
    for f in found:
        parts.append("–" if f is None else f[2])
    return " · ".join(parts)

def row_cell(variant, row):
    def get(delay):
        r = rows.get((delay, variant, row))
        if r is None:
            return None
        t = f"{ms(r['tmin'])}/{ms(r['tmed'])}"
        if r["fails"]:
            t += f" ({r['fails']} failed)"
        return (r["amin"], r["amax"], t)
    return cell(get)

def insession_cell(variant, job):
    def get(delay):
        r = insession.get((delay, variant, job))
        if r is None:
            return None
        if "error" in r:
            return (None, None, "failed: " + r["error"].replace("_", " "))
        return (int(r["apdus_min"]), int(r["apdus_max"]), f"{ms(r['us_min'])}/{ms(r['us_median'])}")
    return cell(get)

delay_names = ["no delay" if d == "0" else f"VIRTPIV_DELAY_US={d}" for d in delays]
print(f"Each cell: **APDUs at the card** (min, or min–max over all runs) · wall ms min/median "
      f"of {runs} runs " + " · ".join(f"[{n}]" for n in delay_names) + ".")
print()
print("| operation | " + " | ".join(title[v] for v in variants) + " |")
print("|---|" + "---|" * len(variants))
ops = [
    ("init", "load + `C_Initialize` + `C_Finalize` (`-I`)"),
    ("slots", "slot list (`-L`), cold"),
    ("objects-cold", "object list (`-O`), cold"),
    ("objects-warm", "object list (`-O`), warm: 2nd process"),
    ("sign-ec-cold", "`--login --sign` ECDSA P-256 (9C), cold"),
    ("sign-ec-warm", "`--login --sign` ECDSA P-256 (9C), warm"),
    ("sign-rsa-cold", "`--login --sign` RSA-2048 (9A), cold"),
    ("sign-rsa-warm", "`--login --sign` RSA-2048 (9A), warm"),
]
for key, name in ops:
    print(f"| {name} | " + " | ".join(row_cell(v, key) for v in variants) + " |")
jobs = [
    ("ecdsa-p256-9c", "module only: login + sign ECDSA P-256 (9C, context login), card enumerated"),
    ("ecdsa-p256-9e", "module only: login + sign ECDSA P-256 (9E), card enumerated"),
    ("rsa2048-9a", "module only: login + sign RSA-2048 (9A), card enumerated"),
]
for key, name in jobs:
    print(f"| {name} | " + " | ".join(insession_cell(v, key) for v in variants) + " |")

def rss_cell(v):
    r = rss.get(v)
    if not r:
        return "–"
    return f"+{int(r['delta_kib']) / 1024:.1f} MB ({r['objects']} objects)"
print("| RSS added: load + `C_Initialize` + one token enumerated | "
      + " | ".join(rss_cell(v) for v in variants) + " |")

crit = {}
threads = []
try:
    for line in open(criterion):
        if line.startswith("RESULT overhead "):
            kv = dict(f.split("=", 1) for f in line.split()[2:])
            crit[kv["job"]] = kv
        elif line.startswith("RESULT threads "):
            threads.append(dict(f.split("=", 1) for f in line.split()[2:]))
except FileNotFoundError:
    pass
def p11card_only(name, text):
    # A row measured for p11card alone (the simulated card is p11card's).
    cells = [text if v == "p11card" else "–" for v in variants]
    print(f"| {name} | " + " | ".join(cells) + " |")

def us(ns):
    return f"{float(ns) / 1000:.1f} µs"

for job, name in [("ecdsa_p256_9e", "ECDSA P-256 (9E)"), ("rsa2048_pkcs1_9a", "RSA-2048 PKCS#1 v1.5 (9A)")]:
    kv = crit.get(job)
    if kv and "p11card" in variants:
        p11card_only(f"module overhead per `C_SignInit`+`C_Sign`, {name}, simulated card (criterion median)",
                     f"**{us(kv['module_paired_ns'])}** (C_Sign {us(kv['c_sign_ns'])} − card "
                     f"{us(kv['card_ns'])} = {us(kv['module_unpaired_ns'])}); of it the software "
                     f"check of the card's signature {us(kv.get('check_ns', 'nan'))}, without it "
                     f"**{us(float(kv['module_paired_ns']) - float(kv.get('check_ns', 'nan')))}**")
for kv in threads:
    if "p11card" in variants:
        p11card_only(f"steady rate, {kv['threads']} thread(s), {kv['job']}, simulated card",
                     f"{kv['rate']}/s (per thread {kv['thread_min']}–{kv['thread_max']} in {kv['secs']} s; "
                     f"per 250 ms {kv['window_min']}–{kv['window_max']}/s)")
cache_variants = [v for v in ["p11card@metadata", "p11card@signed", "opensc-cache@signed"]
                  if any(k[1] == v for k in rows)]
if cache_variants:
    cache_title = {"p11card@metadata": "p11card, card with GET METADATA (YubiKey 5-like)",
                   "p11card@signed": "p11card, card with a signed CHUID",
                   "opensc-cache@signed": "OpenSC, file cache on, signed CHUID"}
    print()
    print("The disk cache, on a card that can prove its public data unchanged (p11card's")
    print("simulated PIV card in vpcd, `cardsim-vpcd`; same cells):")
    print()
    print("| operation | " + " | ".join(cache_title[v] for v in cache_variants) + " |")
    print("|---|" + "---|" * len(cache_variants))
    for key, name in ops:
        if key in ("objects-cold", "objects-warm", "sign-ec-warm", "sign-rsa-warm"):
            print(f"| {name} | " + " | ".join(row_cell(v, key) for v in cache_variants) + " |")
pkcs15_variants = [v for v in ["p11card@myeid", "opensc-nocache@myeid", "opensc-cache@myeid"]
                   if any(k[1] == v for k in rows)]
if pkcs15_variants:
    pkcs15_title = {"p11card@myeid": "p11card (disk cache on)",
                    "opensc-nocache@myeid": "OpenSC, file cache off",
                    "opensc-cache@myeid": "OpenSC, file cache on"}
    pkcs15_ops = [
        ("objects-cold", "object list (`-O`), cold"),
        ("objects-warm", "object list (`-O`), warm: 2nd process"),
        ("sign-ec-cold", "`--login --sign` ECDSA P-256 (iD 02), cold"),
        ("sign-ec-warm", "`--login --sign` ECDSA P-256 (iD 02), warm"),
        ("sign-rsa-warm", "`--login --sign` RSA-2048 (iD 01), warm"),
    ]
    print()
    print("A PKCS#15 card: p11card's simulated MyEID card personalised by OpenSC's")
    print("`pkcs15-init` (tests/realstack/pkcs15/), in vpcd; same cells:")
    print()
    print("| operation | " + " | ".join(pkcs15_title[v] for v in pkcs15_variants) + " |")
    print("|---|" + "---|" * len(pkcs15_variants))
    for key, name in pkcs15_ops:
        print(f"| {name} | " + " | ".join(row_cell(v, key) for v in pkcs15_variants) + " |")

PY
{
    echo "## Benchmarks: p11card, OpenSC and ykcs11 on virtpiv"
    echo
    cat "$WORK/report.md"
    echo
    echo "cold: module caches emptied before each process; warm: the same command ran once before."
    echo "OpenSC's cache column: file_cache_dir private, use_file_caching = yes. Module only: one"
    echo "process lists all objects first, then C_Login, find key, C_SignInit, (context login), C_Sign."
    echo "Module overhead: time per signature minus the time spent inside the simulated card's"
    echo "transmit (paired); in brackets, C_Sign median minus the simulated card replaying the same APDUs."
    echo
    echo "machine: $(nproc) CPUs, ${cpu:-unknown CPU}; $(date -u '+%Y-%m-%d %H:%M UTC'); $rev;" \
        "OpenSC $(version opensc-pkcs11), ykcs11 $(version ykcs11), pcsc-lite $(version pcscd)," \
        "vpcd $(version vsmartcard-vpcd); runs=$RUNS; build ${BUILD_SECS}s, total $((SECONDS - STARTED))s"
} | tee "$OUT"
