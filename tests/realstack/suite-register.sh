# `p11card register` / `unregister` (cli/, target/release/p11card) with the
# module under test (--module): a home directory with a Firefox profile whose
# NSS database certutil created, as Firefox's; register makes modutil list
# the module, certutil list the card's certificates and tstclnt log in to a
# TLS server with a card key through that database; Chrome's ~/.pki/nssdb;
# a profile Firefox (headless) has open is refused; unregister leaves the
# database as it was. System-wide (in a private mount namespace with /etc
# overlaid): p11-kit lists the module and Firefox adds it to a new profile
# from the enterprise policy; unregister --system removes both.
# card-families: piv pkcs15
# (sourced by run.sh once per card: MODULE, PROV, WORK, PIN and the
# card_manifest variables are set)

source "$(dirname "${BASH_SOURCE[0]}")/tls-server.sh"
REG_DIR="$WORK/register"
rm -rf -- "$REG_DIR"
mkdir -p "$REG_DIR"
REG_BIN="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/p11card"
REG_HOME="$REG_DIR/home"
REG_PROFILE="$REG_HOME/.mozilla/firefox/abc.default-esr"
REG_DB="sql:$REG_PROFILE"
printf '%s\n' "$PIN" >"$REG_DIR/pin.txt"

# reg_run ARGS...: p11card with HOME=$REG_HOME; its stdout, stderr and exit
# status land in $REG_DIR/out, err and rc.
reg_run() {
    local rc=0
    HOME="$REG_HOME" timeout "$T" "$REG_BIN" "$@" >"$REG_DIR/out" 2>"$REG_DIR/err" || rc=$?
    echo "$rc" >"$REG_DIR/rc"
}

# reg_show: what the last p11card run printed.
reg_show() {
    echo "exit status $(cat "$REG_DIR/rc")"
    sed 's/^/out: /' "$REG_DIR/out"
    sed 's/^/err: /' "$REG_DIR/err"
}

# reg_expect RC LINE...: the last run exited with RC and printed exactly
# these lines; shown in the log.
reg_expect() {
    local rc="$1"; shift
    sed 's/^/        | /' "$REG_DIR/out" "$REG_DIR/err" >&3
    [ "$(cat "$REG_DIR/rc")" = "$rc" ] && diff <(printf '%s\n' "$@") "$REG_DIR/out" || { reg_show; return 1; }
}
exec 3>&1

# reg_modules DB: modutil -list's output on one line (it exits non-zero
# when a slot is empty: only the output counts).
reg_modules() { timeout "$T" modutil -dbdir "$1" -list </dev/null 2>&1 | tr '\n\t' '  ' || true; }

reg_nss_re() { sed 's/[][\.*^$(){}+?|]/\\&/g' <<<"$1"; }

reg_setup() {
    mkdir -p "$REG_PROFILE" &&
        printf '[Profile0]\nName=default-esr\nIsRelative=1\nPath=abc.default-esr\nDefault=1\n\n[General]\nStartWithLastProfile=1\nVersion=2\n' \
            >"$REG_HOME/.mozilla/firefox/profiles.ini" &&
        timeout "$T" certutil -N --empty-password -d "$REG_DB" &&
        cp "$REG_PROFILE/pkcs11.txt" "$REG_DIR/pkcs11.txt.before"
}

# The p11-kit line: skipped while p11-kit has a system-wide p11card module
# (the Debian package installed on this machine; unregister then says
# UNREGISTER-STATE), else STATE.
reg_p11kit() { # STATE [UNREGISTER-STATE]
    local system
    for system in /usr/share/p11-kit/modules/p11card.module /etc/pkcs11/modules/p11card.module; do
        if [ -e "$system" ] && [ -n "${2:-}" ]; then
            echo "p11-kit (~/.config/pkcs11/modules/p11card.module): $2"
            return
        elif [ -e "$system" ]; then
            echo "p11-kit (~/.config/pkcs11/modules/p11card.module): skipped: p11-kit already loads p11card for every user ($system)"
            return
        fi
    done
    echo "p11-kit (~/.config/pkcs11/modules/p11card.module): $1"
}

reg_register() {
    reg_run register --module "$MODULE"
    reg_expect 0 \
        "Firefox profile default-esr (~/.mozilla/firefox/abc.default-esr): added" \
        "Chrome/Chromium (~/.pki/nssdb): added" \
        "$(reg_p11kit added)"
}

reg_again() {
    reg_run register --module "$MODULE"
    reg_expect 0 \
        "Firefox profile default-esr (~/.mozilla/firefox/abc.default-esr): already registered" \
        "Chrome/Chromium (~/.pki/nssdb): already registered" \
        "$(reg_p11kit "already registered")" &&
        [ "$(grep -c '^name=p11card$' "$REG_PROFILE/pkcs11.txt")" = 1 ]
}

# The token's name as NSS shows it.
reg_token() {
    timeout "$T" certutil -U -d "$REG_DB" </dev/null 2>/dev/null |
        sed -n "/slot: $(reg_nss_re "$READER")/{n;s/^ *token: //p}" | head -n 1
}

reg_modutil_lists() { # DB
    local list token
    list="$(reg_modules "$1")"
    token="$(reg_token)"
    printf '%s\n' "$list"
    [ -n "$token" ] &&
        grep -qE "NSS Internal PKCS #11 Module .* p11card +library name: $(reg_nss_re "$MODULE") .*status: loaded +slot: $(reg_nss_re "$READER") +token: $(reg_nss_re "$token") " <<<"$list"
}

reg_certs() {
    local certs token
    token="$(reg_token)"
    # (no terminal for certutil to ask a PIN on)
    certs="$(timeout "$T" setsid -w certutil -L -d "$REG_DB" -h all </dev/null 2>/dev/null || true)"
    printf '%s\n' "$certs"
    [ "$(grep -cF "$token:" <<<"$certs")" -eq "$CERT_COUNT" ] || return 1
    local key
    for key in $CARD_KEYS; do
        grep -qE "^$(reg_nss_re "$token:${KEY_LABEL[$key]}") +u,u,u" <<<"$certs" || return 1
    done
}

reg_tls() { # key
    local key="$1" token out rc=0
    token="$(reg_token)"
    out=$(timeout "$T" tstclnt -h 127.0.0.1 -p "$TLS_PORT" -d "$REG_DB" -n "$token:${KEY_LABEL[$key]}" \
        -W "$REG_DIR/pin.txt" -o -V tls1.3:tls1.3 <"$REG_DIR/req.txt" 2>&1) || rc=$?
    grep -E 'Protocol +:|Subject:|tstclnt:|alert' <<<"$out"
    echo "(exit $rc)"
    [ "$rc" -eq 0 ] && grep -qE "Protocol +: TLSv1.3\$" <<<"$out" &&
        grep -qE "Subject: .*CN=$(cert_cn "$key")\$" <<<"$out"
}

reg_chrome() {
    # NSS creates Chrome's database next to the pkcs11.txt p11card wrote (as
    # Chrome's read-write open does).
    [ "$(stat -c %a "$REG_HOME/.pki/nssdb")" = 700 ] &&
        timeout "$T" certutil -N --empty-password -d "sql:$REG_HOME/.pki/nssdb" &&
        reg_modutil_lists "sql:$REG_HOME/.pki/nssdb"
}

# A profile Firefox has open: refused, nothing changed.
reg_firefox_open() {
    local pid rc=0
    command -v firefox-esr >/dev/null || { echo "no firefox-esr"; return 1; }
    cp "$REG_PROFILE/pkcs11.txt" "$REG_DIR/pkcs11.txt.open"
    HOME="$REG_HOME" timeout 120 firefox-esr --headless --no-remote --profile "$REG_PROFILE" about:blank \
        >"$REG_DIR/firefox.log" 2>&1 </dev/null &
    pid=$!
    for _ in $(seq 1 300); do [ -L "$REG_PROFILE/lock" ] && break; sleep 0.1; done
    # Firefox loaded the module from the profile's pkcs11.txt: it is in the
    # memory map of Firefox (timeout's child).
    local firefox="" loaded=""
    for _ in $(seq 1 200); do
        firefox="$(cat "/proc/$pid/task/$pid/children" 2>/dev/null | awk '{print $1}')"
        if [ -n "$firefox" ] && grep -qF "$MODULE" "/proc/$firefox/maps" 2>/dev/null; then
            loaded=1
            break
        fi
        sleep 0.1
    done
    echo "Firefox (pid ${firefox:-?}) has the module mapped: ${loaded:-no}"
    [ -n "$loaded" ] || rc=1
    reg_run unregister
    stop_pid "$pid"
    wait "$pid" 2>/dev/null || true
    reg_expect 1 \
        "Firefox profile default-esr (~/.mozilla/firefox/abc.default-esr): refused: Firefox has this profile open; close Firefox and run \`p11card unregister\` again" \
        "Chrome/Chromium (~/.pki/nssdb): removed" \
        "$(reg_p11kit removed "not registered")" || rc=1
    grep -qx "name=p11card" "$REG_PROFILE/pkcs11.txt" || { echo "the profile was changed"; rc=1; }
    return "$rc"
}

reg_unregister() {
    reg_run unregister
    reg_expect 0 \
        "Firefox profile default-esr (~/.mozilla/firefox/abc.default-esr): removed" \
        "Chrome/Chromium (~/.pki/nssdb): not registered" \
        "p11-kit (~/.config/pkcs11/modules/p11card.module): not registered" || return 1
    local list
    list="$(reg_modules "$REG_DB")"
    printf '%s\n' "$list"
    grep -q "NSS Internal PKCS #11 Module" <<<"$list" && ! grep -q " p11card " <<<"$list" &&
        ! grep -qx "name=p11card" "$REG_PROFILE/pkcs11.txt"
}

# System-wide, in a private mount namespace whose /etc is an overlay: p11-kit
# (as root it reads /etc/pkcs11/modules) and Firefox's policy.
reg_system() {
    local upper="$REG_DIR/etc-upper" work="$REG_DIR/etc-work"
    mkdir -p "$upper" "$work" "$REG_DIR/fxprofile"
    cat >"$REG_DIR/system.sh" <<'EOF'
set -u
bin="$1" module="$2" dir="$3" upper="$4" work="$5"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$upper,workdir=$work" /etc || exit 1
packaged=/usr/share/p11-kit/modules/p11card.module
echo "\$ p11card register --system --module MODULE"
timeout 30 "$bin" register --system --module "$module"; echo "(exit $?)"
if [ -e "$packaged" ]; then
    echo "(the package's $packaged is installed)"
else
    echo "\$ p11-kit list-modules"
    timeout 30 p11-kit list-modules | grep -A3 '^p11card: '
fi
echo "\$ cat /etc/firefox/policies/policies.json"
cat /etc/firefox/policies/policies.json
echo "\$ firefox-esr --headless --screenshot (a new profile)"
HOME="$dir" timeout 90 firefox-esr --headless --no-remote --profile "$dir/fxprofile" \
    --screenshot "$dir/fx.png" about:blank >"$dir/fx-policy.log" 2>&1 </dev/null
grep -B1 -A1 -x 'name=p11card' "$dir/fxprofile/pkcs11.txt"
echo "\$ p11card unregister --system"
timeout 30 "$bin" unregister --system; echo "(exit $?)"
ls /etc/pkcs11/modules/p11card.module /etc/firefox/policies/policies.json 2>&1
EOF
    local out
    out="$(timeout 180 unshare -m bash "$REG_DIR/system.sh" "$REG_BIN" "$MODULE" "$REG_DIR" "$upper" "$work" 2>&1)"
    printf '%s\n' "$out" | sed 's/^/        | /' >&3
    local p11kit_ok
    if [ -e /usr/share/p11-kit/modules/p11card.module ]; then
        p11kit_ok="p11-kit \(/etc/pkcs11/modules/p11card.module\): skipped: the p11card package"
    else
        p11kit_ok="p11-kit \(/etc/pkcs11/modules/p11card.module\): added"
    fi
    grep -qE "^$p11kit_ok" <<<"$out" &&
        grep -qxF "Firefox policy (/etc/firefox/policies/policies.json): added" <<<"$out" &&
        grep -qxF "Chrome/Chromium: skipped: Chrome has no system-wide NSS database; each user runs \`p11card register\`" <<<"$out" &&
        grep -qxF "library=$MODULE" <<<"$out" &&
        grep -qxF "Firefox policy (/etc/firefox/policies/policies.json): removed" <<<"$out" &&
        grep -qF "cannot access '/etc/firefox/policies/policies.json'" <<<"$out" &&
        grep -qF "cannot access '/etc/pkcs11/modules/p11card.module'" <<<"$out" &&
        { [ -e /usr/share/p11-kit/modules/p11card.module ] ||
            { grep -qxF "p11card: $MODULE" <<<"$out" &&
                grep -qxF "p11-kit (/etc/pkcs11/modules/p11card.module): removed" <<<"$out"; }; } &&
        [ ! -e /etc/firefox/policies/policies.json ] && [ ! -e /etc/pkcs11/modules/p11card.module ]
}

if ! (cd "$REPO_ROOT" && timeout 1200 nice -n 15 cargo build --release -p p11card-cli) >"$REG_DIR/build.log" 2>&1; then
    fail "register: building target/release/p11card"
    tail -20 "$REG_DIR/build.log" | sed 's/^/        /'
else
    start_tls_server
    printf 'GET / HTTP/1.0\r\n\r\n' >"$REG_DIR/req.txt"
    read -r -a REG_TLS_KEYS <<<"$TLS_KEYS"
    check_fn "a Firefox-like profile: profiles.ini and an NSS database made by certutil -N" reg_setup
    check_fn "p11card register --module: the profile, Chrome's ~/.pki/nssdb and p11-kit added" reg_register
    check_fn "p11card register again: already registered everywhere, one p11card entry" reg_again
    check_fn "modutil -list on the profile's database: p11card loaded with the card's token" reg_modutil_lists "$REG_DB"
    check_fn "certutil -L -h all on the profile's database lists the card's $CERT_COUNT certificates" reg_certs
    check_fn "tstclnt TLS 1.3 client certificate login with key ${REG_TLS_KEYS[0]} through the profile's database" \
        reg_tls "${REG_TLS_KEYS[0]}"
    check_fn "Chrome's ~/.pki/nssdb (0700): NSS creates the database, modutil lists p11card with the token" reg_chrome
    check_fn "Firefox (headless) on the registered profile loads the module; p11card unregister meanwhile: refused, the profile unchanged" \
        reg_firefox_open
    check_fn "p11card unregister: modutil no longer lists p11card, the internal module stays" reg_unregister
    check "the profile's pkcs11.txt is as certutil -N left it" cmp "$REG_DIR/pkcs11.txt.before" "$REG_PROFILE/pkcs11.txt"
    check_fn "p11card register/unregister --system (private /etc): p11-kit lists it, Firefox adds it from the policy" \
        reg_system
fi
