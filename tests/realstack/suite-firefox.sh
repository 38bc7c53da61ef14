# Firefox (headless firefox-esr, driven through Marionette) logs in to an
# HTTPS site that requires a client certificate, with the card: a fresh
# Firefox profile, the module registered in it by the README's `p11card
# register` recipe, the PIN typed into Firefox's own PIN prompt.
# (sourced by run.sh, and by tests/package/run.sh with the installed
# package: MODULE, PROV, WORK, PIN set; FF_HOME, the home directory of the
# Firefox user, and CLI_BIN, the p11card command, may be set.)

# card-families: piv pkcs15

if ! command -v firefox-esr >/dev/null 2>&1; then
    fail "firefox-esr is installed (scripts/setup-debian.sh installs it)"
    return 0
fi

FF_HOME="${FF_HOME:-$WORK/firefox-home}"
FF_PROFILE="$FF_HOME/.mozilla/firefox/p11card.test"
CLI_BIN="${CLI_BIN:-${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/p11card}"
rm -rf -- "$FF_HOME/.mozilla"
mkdir -p "$FF_PROFILE"
# The profile as Firefox lists it, with an NSS database of its own.
cat >"$FF_HOME/.mozilla/firefox/profiles.ini" <<INI
[Profile0]
Name=p11card-test
IsRelative=1
Path=p11card.test
Default=1

[General]
StartWithLastProfile=1
Version=2
INI
check "certutil -N creates the profile's NSS database" certutil -N -d "sql:$FF_PROFILE" --empty-password

# The README's recipe (`p11card register`); a module that is not the
# installed one is named with --module.
ff_register() {
    local out module_option=""
    [ "$MODULE" = /usr/lib/x86_64-linux-gnu/pkcs11/p11card-pkcs11.so ] || module_option=" --module $MODULE"
    readme_recipe register "s|p11card register|p11card register$module_option|" >"$WORK/recipe-register.sh"
    out=$(HOME="$FF_HOME" run_recipe "$WORK/recipe-register.sh") || { printf '%s\n' "$out"; return 1; }
    printf '%s\n' "$out"
    grep -qE "^ *Firefox profile p11card-test .*: added" <<<"$out" &&
        grep -qxF "library=$MODULE" "$FF_PROFILE/pkcs11.txt"
}
check_fn "README recipe 'register': p11card register adds the module to the Firefox profile" ff_register

# The site: a server certificate for localhost from a CA of its own (Firefox
# refuses a self-signed CA certificate as a server's), the CA trusted in the
# profile as a person's company CA would be.
ff_site_certificates() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -keyout "$WORK/ff-site-ca.key" -out "$WORK/ff-site-ca.pem" -subj "/CN=p11card test site CA" &&
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -keyout "$WORK/ff-site.key" -out "$WORK/ff-site.csr" -subj "/CN=localhost" &&
        openssl x509 -req -in "$WORK/ff-site.csr" -CA "$WORK/ff-site-ca.pem" -CAkey "$WORK/ff-site-ca.key" \
            -CAcreateserial -days 2 -out "$WORK/ff-site.pem" \
            -extfile <(printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
                "extendedKeyUsage=serverAuth" "subjectAltName=DNS:localhost,IP:127.0.0.1")
}
check_fn "a CA and a localhost certificate for the test site" ff_site_certificates
FF_PORT="$(free_port)"
timeout 600 openssl s_server -accept "$FF_PORT" -cert "$WORK/ff-site.pem" -key "$WORK/ff-site.key" \
    -CAfile "$PROV/ca.pem" -Verify 1 -verify_return_error -www >"$WORK/ff-s_server.log" 2>&1 &
on_exit stop_pid "$!"
wait_port "$FF_PORT"
check "certutil -A trusts the site's CA in the profile" \
    certutil -A -d "sql:$FF_PROFILE" -n p11card-test-site-ca -t "C,," -i "$WORK/ff-site-ca.pem"

# ff_login PIN [--expect-prompt]: a fresh Firefox on the profile opens the
# TLS server's page; prints what the page (or Firefox) said.
ff_login() {
    local port out rc=0 pid
    port="$(free_port)"
    cat >"$FF_PROFILE/user.js" <<JS
user_pref("marionette.port", $port);
user_pref("security.default_personal_cert", "Select Automatically");
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("browser.aboutwelcome.enabled", false);
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);
user_pref("app.update.disabledForTesting", true);
user_pref("network.proxy.type", 0);
JS
    HOME="$FF_HOME" MOZ_HEADLESS=1 timeout 300 firefox-esr --headless --marionette --remote-allow-system-access --no-remote \
        --profile "$FF_PROFILE" about:blank >"$WORK/firefox-$port.log" 2>&1 &
    pid=$!
    out=$(timeout 120 python3 "$REPO_ROOT/tests/realstack/firefox/marionette.py" "$port" "https://localhost:$FF_PORT/" "$@" 2>&1) || rc=$?
    stop_pid "$pid"
    printf '%s\n(exit %s)\n' "$out" "$rc"
    return "$rc"
}

# ff_tries: the PIN tries left, as `p11card status` shows them.
ff_tries() {
    timeout "$T" "$CLI_BIN" status 2>/dev/null | sed -n 's/^  PIN: *\([0-9]*\) tr[a-z]* left.*/\1/p' | head -n 1
}

# A wrong PIN typed into Firefox's prompt: no login, the site refuses the
# connection, and the card counted exactly one wrong try (Firefox asks
# again; the test then cancels).
ff_wrong_pin() {
    local out before after
    before="$(ff_tries)"
    out=$(ff_login 000000,-) && { printf '%s\nthe page loaded\n' "$out"; return 1; }
    printf '%s\n' "$out"
    after="$(ff_tries)"
    echo "tries before: ${before:-?} after: ${after:-?}"
    # (Before any wrong PIN some cards show no count: then only a count.)
    grep -q "PIN prompt:" <<<"$out" && [ -n "$after" ] && [ "$after" -ge 1 ] &&
        { [ -z "$before" ] || [ "$after" -eq $((before - 1)) ]; }
}
if [ -x "$CLI_BIN" ]; then
    check_fn "Firefox with a wrong PIN: no login, one try spent" ff_wrong_pin
fi

ff_right_pin() {
    local out
    out=$(ff_login "$PIN,-" --expect-prompt) || { printf '%s\n' "$out"; tail -20 "$WORK"/firefox-*.log; return 1; }
    printf '%s\n' "$out"
    grep -q "PIN prompt:" <<<"$out" && grep -qF "CN=$(cert_cn "$LOGIN_KEY")" <<<"$out" &&
        grep -qE "Protocol +: TLSv1.3" <<<"$out" && grep -q "Verify return code: 0 (ok)" <<<"$out"
}
check_fn "Firefox asks for the PIN and logs in to the site with the card's certificate $(cert_cn "$LOGIN_KEY") (TLS 1.3)" ff_right_pin
