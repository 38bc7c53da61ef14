# The p11card command (cli/, target/release/p11card) against the card in the
# reader: status, list (and list --json), wait, a wrong PIN (its message,
# exactly one try spent), the PIN changed and back through --pin-fd, and the
# PIN set again with the PUK; status --json; doctor (all ok with the module
# registered for p11-kit and NSS, the problem and its fix without) and
# doctor --report (the APDU trace, no PIN). P11CARD_CLI_SHOW=1 prints what
# status and doctor said.
# card-families: piv pkcs15
# (sourced by run.sh once per card: MODULE, PROV, WORK, PIN and the
# card_manifest variables are set)

CLI_DIR="$WORK/cli"
mkdir -p "$CLI_DIR"
: >"$CLI_DIR/shown"
CLI_BIN="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/p11card"
NEW_PIN=654321

# cli_run ARGS...: runs p11card; its stdout, stderr and exit status land in
# $CLI_DIR/out, err and rc.
cli_run() {
    local rc=0
    timeout "$T" "$CLI_BIN" "$@" >"$CLI_DIR/out" 2>"$CLI_DIR/err" || rc=$?
    echo "$rc" >"$CLI_DIR/rc"
}

# cli_show: what the last p11card run printed (for a failing check).
cli_show() {
    echo "exit status $(cat "$CLI_DIR/rc")"
    sed 's/^/out: /' "$CLI_DIR/out"
    sed 's/^/err: /' "$CLI_DIR/err"
}

# cli_secrets LINE...: a file with these lines, only for us, for --pin-fd.
cli_secrets() {
    local file="$CLI_DIR/secrets"
    (umask 077 && printf '%s\n' "$@" >"$file")
    echo "$file"
}

# cli_tries: the PIN tries left `p11card status` shows.
cli_tries() {
    cli_run status
    sed -n 's/^  PIN: *\([0-9]*\) tr[a-z]* left.*/\1/p' "$CLI_DIR/out" | head -n 1
}

# (virtpiv keeps the PIN verified across connections until a reset: status
# then says no wrong PIN is known instead of a count.)
cli_status() {
    cli_run status
    [ "$(cat "$CLI_DIR/rc")" = 0 ] &&
        grep -qxF "  Token:   $TOKEN_LABEL" "$CLI_DIR/out" &&
        grep -qE '^  Profile: [a-z0-9-]+$' "$CLI_DIR/out" &&
        grep -qE '^  Card:    present, ATR 3B( [0-9A-F]{2})+$' "$CLI_DIR/out" &&
        grep -qE '^  PIN:     ([0-9]+ tr(y|ies) left|no wrong PIN known since the last right one) ' "$CLI_DIR/out" &&
        grep -qE '^  PUK:     ([0-9]+ tr(y|ies) left|unknown .*)$' "$CLI_DIR/out" &&
        grep -qE '^  Cache:   (off|on .*|used .*)$' "$CLI_DIR/out" &&
        grep -qxF "A usable card is present." "$CLI_DIR/out" || { cli_show; return 1; }
    cli_keep status
}

# cli_keep NAME: keeps what the last run printed in $CLI_DIR/shown, which
# the suite prints at its end with P11CARD_CLI_SHOW=1 (for the notes).
cli_keep() {
    echo "p11card $1 (exit $(cat "$CLI_DIR/rc")):" >>"$CLI_DIR/shown"
    sed 's/^/        | /' "$CLI_DIR/out" >>"$CLI_DIR/shown"
}

cli_status_json() {
    cli_run status --json
    [ "$(cat "$CLI_DIR/rc")" = 0 ] &&
        timeout "$T" python3 - "$CLI_DIR/out" "$TOKEN_LABEL" <<'EOF' || { cli_show; return 1; }
import json, sys
status = json.load(open(sys.argv[1]))
assert status["verdict"] == "usable", status
card = next(r for r in status["readers"] if r["token"] and r["token"]["label"] == sys.argv[2])
assert card["card_present"] and card["atr"].startswith("3B") and card["profile"], card
assert card["token"]["pin"]["state"] in ("plenty", "low", "final-try"), card
assert not card["token"]["pin"]["blocked"], card
assert card["token"]["puk"]["blocked"] in (None, False), card
assert card["token"]["cache"] in ("off", "not-cached", "read-from-card", "used"), card
EOF
    cli_keep "status --json"
}

# cli_doctor_home NAME [LIBRARY]: a home directory with a Firefox profile
# whose NSS module list has LIBRARY (none without it).
cli_doctor_home() {
    local home="$CLI_DIR/$1"
    mkdir -p "$home/.mozilla/firefox/test.default"
    printf '[Profile0]\nName=default\nIsRelative=1\nPath=test.default\n' >"$home/.mozilla/firefox/profiles.ini"
    {
        printf 'library=\nname=NSS Internal PKCS #11 Module\n\n'
        [ -z "${2:-}" ] || printf 'library=%s\nname=p11card\n' "$2"
    } >"$home/.mozilla/firefox/test.default/pkcs11.txt"
    echo "$home"
}

# The doctor with the module registered for p11-kit (system-wide: as root
# p11-kit reads no per-user file; removed right after) and for Firefox.
CLI_P11KIT_FILE=/etc/pkcs11/modules/p11card-doctor-test.module
cli_doctor_ok() {
    local home
    home="$(cli_doctor_home home-ok "$MODULE")"
    mkdir -p /etc/pkcs11/modules && printf 'module: %s\ncritical: no\n' "$MODULE" >"$CLI_P11KIT_FILE"
    HOME="$home" XDG_CONFIG_HOME="$home/.config" cli_run doctor
    rm -f -- "$CLI_P11KIT_FILE"
    [ "$(cat "$CLI_DIR/rc")" = 0 ] &&
        grep -qxF "ok      the PC/SC service answers" "$CLI_DIR/out" &&
        grep -qE '^ok      [0-9]+ readers?: ' "$CLI_DIR/out" &&
        grep -qE '^ok      the card in .* is recognised: profile [a-z0-9-]+$' "$CLI_DIR/out" &&
        grep -qF "ok      token \"$TOKEN_LABEL\" (serial " "$CLI_DIR/out" &&
        grep -qE '^ok      PIN: ' "$CLI_DIR/out" &&
        [ "$(grep -cE '^ok      the certificate .* is valid until ' "$CLI_DIR/out")" -ge "$CARD_KEY_COUNT" ] &&
        grep -qxF "ok      p11-kit sees p11card: $CLI_P11KIT_FILE loads $MODULE" "$CLI_DIR/out" &&
        grep -qE '^ok      the Firefox profile .*/test.default has p11card$' "$CLI_DIR/out" &&
        ! grep -q '^problem' "$CLI_DIR/out" &&
        [ "$(tail -n 1 "$CLI_DIR/out")" = "No problem found." ] || { cli_show; return 1; }
    cli_keep doctor
}

# Without the registrations: each is a problem with its fix, exit 1.
cli_doctor_problems() {
    local home
    home="$(cli_doctor_home home-bad)"
    HOME="$home" XDG_CONFIG_HOME="$home/.config" cli_run doctor
    [ "$(cat "$CLI_DIR/rc")" = 1 ] &&
        grep -qE '^problem the Firefox profile .*/test.default does not have p11card; run `p11card register` \(with the browser closed\)$' "$CLI_DIR/out" &&
        grep -qE '^[0-9]+ problems? found\.$' "$CLI_DIR/out" || { cli_show; return 1; }
    cli_keep "doctor (nothing registered)"
}

# doctor --report after another program logged in (and with P11CARD_PIN
# set): the APDU trace of one
# enumeration (a SELECT, a read), the report only for its owner, no PIN in
# it (ASCII or hex); an existing report is not overwritten.
cli_doctor_report() {
    local report="$CLI_DIR/report.txt" secrets hex serial
    secrets="$(cli_secrets "$PIN")"
    cli_run list --login --pin-fd 3 3<"$secrets"
    [ "$(cat "$CLI_DIR/rc")" = 0 ] || { echo "login:"; cli_show; return 1; }
    rm -f -- "$report"
    # (A PIN in the environment, as the examples read it, stays out too.)
    P11CARD_PIN="$PIN" cli_run doctor --report "$report"
    grep -qxF "Report written to $report." "$CLI_DIR/out" || { cli_show; return 1; }
    [ "$(stat -c %a "$report")" = 600 ] || { echo "mode $(stat -c %a "$report")"; return 1; }
    sed -n '/^== APDU trace/,$p' "$report" >"$CLI_DIR/trace"
    grep -qE '^ +[0-9]+ [0-9A-F]{2} A4 [0-9A-F]{2} [0-9A-F]{2}  Lc=[0-9]+ data=[0-9A-F ]+  -> SW [0-9A-F]{4}, [0-9]+ bytes  [0-9.]+ ms$' "$CLI_DIR/trace" &&
        grep -qE '^ +[0-9]+ [0-9A-F]{2} (B0|B1|CA|CB) [0-9A-F]{2} [0-9A-F]{2}  .*-> SW 9000, [0-9]+ bytes  [0-9.]+ ms$' "$CLI_DIR/trace" ||
        { echo "no SELECT or read in the trace:"; cat "$CLI_DIR/trace"; return 1; }
    hex="$(printf '%s' "$PIN" | od -An -tx1 | tr -d ' \n' | tr a-f A-F)"
    # (The card's serial is public and may hold the PIN's digits: the
    # MyEID's 0000000000123456 does.)
    serial="$(sed -n 's/^  Serial: //p' "$report" | head -n 1)"
    if sed "s/${serial:-no serial}//g" "$report" |
        grep -qiF -e "$PIN" -e "$hex" -e "$(sed 's/../& /g; s/ $//' <<<"$hex")"; then
        echo "the PIN is in the report"; return 1
    fi
    cli_run doctor --report "$report"
    [ "$(cat "$CLI_DIR/rc")" = 1 ] && grep -qF "it exists already" "$CLI_DIR/err" || { cli_show; return 1; }
    echo "doctor --report: $(grep -c ' ms$' "$CLI_DIR/trace") APDUs; the report:" >>"$CLI_DIR/shown"
    sed 's/^/        | /' "$report" >>"$CLI_DIR/shown"
}

cli_list() {
    cli_run list
    [ "$(cat "$CLI_DIR/rc")" = 0 ] || { cli_show; return 1; }
    local key uri
    for key in $CARD_KEYS; do
        uri="$(key_uri "$key" x)"
        uri="${uri%;type=x}"
        grep -qF "CN=$(cert_cn "$key")" "$CLI_DIR/out" &&
            grep -qixF "    URI:         $uri" "$CLI_DIR/out" || { echo "key $key ($uri):"; cli_show; return 1; }
    done
    [ "$(grep -c '^    Valid:  .* UTC to .* UTC$' "$CLI_DIR/out")" -ge "$CARD_KEY_COUNT" ] || { cli_show; return 1; }
}

cli_list_json() {
    cli_run list --json
    [ "$(cat "$CLI_DIR/rc")" = 0 ] && timeout "$T" python3 -m json.tool "$CLI_DIR/out" >/dev/null &&
        timeout "$T" python3 - "$CLI_DIR/out" "$TOKEN_LABEL" "$CARD_KEY_COUNT" <<'EOF' || { cli_show; return 1; }
import json, sys
cards = json.load(open(sys.argv[1]))["cards"]
card = next(card for card in cards if card["token"] == sys.argv[2])
with_cert = [key for key in card["keys"] if key["certificate"]]
assert len(with_cert) >= int(sys.argv[3]), with_cert
for key in with_cert:
    assert key["uri"].startswith("pkcs11:token="), key
    assert not key["certificate"]["expired"] and key["certificate"]["issuer"], key
EOF
}

cli_wait() {
    cli_run wait --timeout 10
    [ "$(cat "$CLI_DIR/rc")" = 0 ] && grep -qF "Card \"$TOKEN_LABEL\"" "$CLI_DIR/out" || { cli_show; return 1; }
}

cli_wrong_pin() {
    local before after secrets
    before="$(cli_tries)"
    [ -n "$before" ] || { echo "status shows no tries:"; cli_show; return 1; }
    secrets="$(cli_secrets 000000 "$NEW_PIN")"
    cli_run pin change --pin-fd 3 3<"$secrets"
    [ "$(cat "$CLI_DIR/rc")" = 1 ] && grep -qE '^p11card: wrong PIN; ' "$CLI_DIR/err" || { cli_show; return 1; }
    after="$(cli_tries)"
    [ "$after" = $((before - 1)) ] || { echo "tries before $before, after $after"; cli_show; return 1; }
}

cli_change_and_back() {
    local secrets
    secrets="$(cli_secrets "$PIN" "$NEW_PIN")"
    cli_run pin change --pin-fd 3 3<"$secrets"
    [ "$(cat "$CLI_DIR/rc")" = 0 ] && grep -qxF "The PIN was changed." "$CLI_DIR/out" || { cli_show; return 1; }
    # The new PIN logs in (and the old one no longer would).
    secrets="$(cli_secrets "$NEW_PIN")"
    cli_run list --login --pin-fd 3 3<"$secrets"
    [ "$(cat "$CLI_DIR/rc")" = 0 ] || { echo "login with the new PIN:"; cli_show; return 1; }
    secrets="$(cli_secrets "$NEW_PIN" "$PIN")"
    cli_run pin change --pin-fd 3 3<"$secrets"
    [ "$(cat "$CLI_DIR/rc")" = 0 ] || { echo "changing back:"; cli_show; return 1; }
    timeout "$T" pkcs11-tool --module "$MODULE" --login --pin "$PIN" -O >/dev/null ||
        { echo "pkcs11-tool does not log in with the PIN changed back"; return 1; }
}

# cli_typed: `pin change` on a terminal (util-linux `script` gives it a
# pseudo-terminal): the prompts appear, what is typed is not echoed, the
# PIN changes; then back through --pin-fd. (The first line names the card:
# a serial may hold the PIN's digits.) Keys are "typed" after pauses
# (a prompt discards what was typed before it, as getpass does).
cli_typed() {
    local transcript="$CLI_DIR/typed" rc=0 secrets
    command -v script >/dev/null || { echo "no util-linux script"; return 1; }
    { sleep 4; printf '%s\r' "$PIN"; sleep 2; printf '%s\r' "$NEW_PIN"; sleep 2; printf '%s\r' "$NEW_PIN"; sleep 2; } |
        timeout "$T" script -qefc "$(printf '%q ' "$CLI_BIN") pin change" /dev/null >"$transcript" 2>&1 || rc=$?
    grep -qF "Current PIN: " "$transcript" && grep -qF "New PIN again: " "$transcript" &&
        grep -qF "The PIN was changed." "$transcript" &&
        ! sed 1d "$transcript" | grep -qF -e "$PIN" -e "$NEW_PIN" || { echo "exit $rc:"; cat -A "$transcript"; return 1; }
    secrets="$(cli_secrets "$NEW_PIN" "$PIN")"
    cli_run pin change --pin-fd 3 3<"$secrets"
    [ "$(cat "$CLI_DIR/rc")" = 0 ] || { echo "changing back:"; cli_show; return 1; }
}

cli_unblock() {
    local secrets
    secrets="$(cli_secrets "$PUK" "$PIN")"
    cli_run pin unblock --puk-fd 3 --pin-fd 3 3<"$secrets"
    [ "$(cat "$CLI_DIR/rc")" = 0 ] &&
        grep -qxF "The PIN is unblocked and set to the new PIN." "$CLI_DIR/out" || { cli_show; return 1; }
    timeout "$T" pkcs11-tool --module "$MODULE" --login --pin "$PIN" -O >/dev/null ||
        { echo "pkcs11-tool does not log in with the PIN set by the PUK"; return 1; }
}

if ! (cd "$REPO_ROOT" && timeout 1200 nice -n 15 cargo build --release -p p11card-cli) >"$CLI_DIR/build.log" 2>&1; then
    fail "cli: building target/release/p11card"
    tail -20 "$CLI_DIR/build.log" | sed 's/^/        /'
else
    check_fn "p11card status shows the token \"$TOKEN_LABEL\", its profile, ATR and PIN state; exit 0" cli_status
    check_fn "p11card status --json: the token, its profile, PIN and PUK state, cache state" cli_status_json
    check_fn "p11card doctor with the module registered (p11-kit, Firefox): all ok, exit 0" cli_doctor_ok
    check_fn "p11card doctor without registration: the problem and 'run p11card register', exit 1" cli_doctor_problems
    check_fn "p11card doctor --report after a login: APDU trace (SELECT, read), mode 600, no PIN" cli_doctor_report
    check_fn "p11card list shows the $CARD_KEY_COUNT certificates with their pkcs11: URIs and validity" cli_list
    check_fn "p11card list --json parses (python3 -m json.tool) and has every certificate" cli_list_json
    check_fn "p11card wait --timeout 10 returns at once with the card in the reader" cli_wait
    check_fn "p11card pin change with a wrong PIN: 'wrong PIN', exit 1, exactly one try spent" cli_wrong_pin
    check_fn "p11card pin change --pin-fd to $NEW_PIN and back; the new PIN logs in between" cli_change_and_back
    check_fn "p11card pin change on a terminal: prompts, no echo of the PINs, the PIN changed (and back)" cli_typed
    check_fn "p11card pin unblock --puk-fd/--pin-fd sets the PIN with the PUK" cli_unblock
    [ -z "${P11CARD_CLI_SHOW:-}" ] || sed 's/^/    /' "$CLI_DIR/shown"
fi
