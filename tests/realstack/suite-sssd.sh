# SSSD smart-card authentication (Debian sssd-common): pam_sss -> sssd_pam
# -> p11_child, which finds the module through p11-kit (selected by a
# p11_uri naming the module's library description and manufacturer, since
# OpenSC's module shows the same card), reads the card's certificates,
# verifies them against the card's CA, maps the $LOGIN_KEY certificate to a
# local user of the files provider by a [certmap] rule (the $EC_KEY one to a
# second user), asks the PIN, logs in and has the card sign a challenge.
# pamtester drives a test PAM service: right PIN in (RSA and EC key), wrong
# PIN out costing exactly one try (`p11card status` counts), unmapped user
# out; then what one authentication costs (APDUs, ms), also with the other
# p11-kit modules disabled in p11_child.
# Everything SSSD reads or writes (/etc/sssd, /var/lib/sss, /var/log/sssd,
# /run, the PAM service, p11-kit's module directories, the users, p11card's
# disk cache) is a directory of this run mounted over the system's inside
# the real stack's private mount namespace; the host keeps its own.
# card-families: piv pkcs15
# P11CARD_SSSD_LOGS=DIR keeps SSSD's logs, sssd.conf and the APDUs of one
# authentication in DIR/CARD.
# (sourced by run.sh once per card: MODULE, PROV, WORK, PIN and the
# card_manifest variables are set)

SSSD_W="$WORK/sssd"
SSSD_SERVICE=p11card-sssd-test
SSSD_USER=p11cardsssd       # the user the login certificate maps to
SSSD_EC_USER=p11cardsssdec  # the user the EC key's certificate maps to
SSSD_OTHER=p11cardother     # a user nothing maps to
SSSD_DOMAIN=files
SSSD_CLI="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/p11card"
SSSD_PID=""
# where p11-kit looks for a module named by its bare file name
SSSD_P11KIT_MODULE_DIR="$(pkg-config --variable=p11_module_path p11-kit-1 2>/dev/null || echo /usr/lib/x86_64-linux-gnu/pkcs11)"

# sssd_mount_over DIR SYSTEM_DIR: our DIR over SYSTEM_DIR, unmounted at the end.
sssd_mount_over() {
    timeout 10 mount --bind "$1" "$2" || return 1
    on_exit timeout 10 umount "$2"
}

# sssd_regex TEXT: TEXT as a POSIX extended regular expression matching itself.
sssd_regex() { sed 's/[][\.^$()|*+?{}]/\\&/g' <<<"$1"; }

# sssd_dn CERT.pem: the certificate's subject as SSSD's rules see it (RFC 4514).
sssd_dn() {
    timeout "$T" openssl x509 -in "$1" -noout -subject -nameopt RFC2253 | sed 's/^subject=//'
}

# sssd_uri_quote TEXT: TEXT percent-encoded for a pkcs11: URI attribute.
sssd_uri_quote() {
    python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"
}

# sssd_setup: installs SSSD if needed and writes and mounts its files.
sssd_setup() {
    local d f subject issuer libdesc libmanuf list name path sel="" entry registered=""
    if [ ! -x /usr/sbin/sssd ] || [ ! -x /usr/libexec/sssd/p11_child ] || ! command -v pamtester >/dev/null; then
        echo "  (installing sssd-common pamtester)"
        timeout 900 env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q \
            --no-install-recommends sssd-common pamtester >"$WORK/sssd-apt.log" 2>&1 || tail -5 "$WORK/sssd-apt.log"
    fi
    [ -x /usr/sbin/sssd ] || { echo "no /usr/sbin/sssd"; return 1; }
    rm -rf -- "$SSSD_W"
    mkdir -p "$SSSD_W"/{etc/conf.d,etc/pki,log,pcscd,pam.d,p11kit-modules,cache}
    chmod 0700 "$SSSD_W/cache"
    mkdir -p "$SSSD_W"/lib/{db,mc,pipes/private,pubconf,gpo_cache,deskprofile,secrets,keytabs}
    chmod 0700 "$SSSD_W/etc" "$SSSD_W/lib/pipes/private" "$SSSD_W/lib/db"

    # The users: the files provider reads our own passwd and group files.
    printf '%s:x:64201:64201:p11card SSSD test:/nonexistent:/usr/sbin/nologin\n' "$SSSD_USER" >"$SSSD_W/passwd"
    printf '%s:x:64202:64202:p11card SSSD test (unmapped):/nonexistent:/usr/sbin/nologin\n' "$SSSD_OTHER" >>"$SSSD_W/passwd"
    printf '%s:x:64203:64203:p11card SSSD test (EC):/nonexistent:/usr/sbin/nologin\n' "$SSSD_EC_USER" >>"$SSSD_W/passwd"
    printf '%s:x:64201:\n%s:x:64202:\n%s:x:64203:\n' "$SSSD_USER" "$SSSD_OTHER" "$SSSD_EC_USER" >"$SSSD_W/group"

    # The CA database: the card's issuing CA.
    cp -- "$PROV/ca.pem" "$SSSD_W/etc/pki/sssd_auth_ca_db.pem"

    # p11-kit: the system's modules (OpenSC's too) and ours, unless the
    # module is one p11-kit already has (OpenSC's, for a comparison run).
    cp -a /usr/share/p11-kit/modules/. "$SSSD_W/p11kit-modules/"
    for f in "$SSSD_W"/p11kit-modules/*.module; do
        [ -f "$f" ] || continue
        d="$(sed -n 's/^module: *//p' "$f")"
        case "$d" in /*) ;; *) d="$SSSD_P11KIT_MODULE_DIR/$d" ;; esac
        [ "$(realpath -- "$d" 2>/dev/null)" != "$MODULE" ] || registered="$f"
    done
    if [ -z "$registered" ]; then
        sed "s|^module:.*|module: $MODULE|" "$REPO_ROOT/p11card.module" >"$SSSD_W/p11kit-modules/$SSSD_SERVICE.module"
    fi

    # The PAM service: a copy of /etc/pam.d with ours added.
    cp -a /etc/pam.d/. "$SSSD_W/pam.d/"
    cat >"$SSSD_W/pam.d/$SSSD_SERVICE" <<'EOF'
# p11card real-stack test: smart-card authentication through SSSD only.
auth     required pam_sss.so try_cert_auth
account  required pam_permit.so
EOF

    # Mounts (private to the real stack's mount namespace).
    sssd_mount_over "$SSSD_W/etc" /etc/sssd &&
        sssd_mount_over "$SSSD_W/lib" /var/lib/sss &&
        sssd_mount_over "$SSSD_W/log" /var/log/sssd &&
        sssd_mount_over "$SSSD_W/pam.d" /etc/pam.d &&
        sssd_mount_over "$SSSD_W/p11kit-modules" /usr/share/p11-kit/modules || return 1
    # (p11-kit's other module directory: another run's suite-p11kit.sh may
    # have registered its module there; empty for p11_child here)
    if [ -d /etc/pkcs11 ]; then
        mkdir -p "$SSSD_W/etc-pkcs11" && sssd_mount_over "$SSSD_W/etc-pkcs11" /etc/pkcs11 || return 1
    fi

    # p11_uri: the module's slots only, by what p11-kit reports of it.
    list="$(timeout "$T" p11-kit list-modules 2>&1)"
    # (p11-kit shows a module registered by its bare file name as such;
    # $MODULE is a real path)
    while read -r name path; do
        case "$path" in /*) ;; *) path="$SSSD_P11KIT_MODULE_DIR/$path" ;; esac
        [ "$(realpath -- "$path" 2>/dev/null)" != "$MODULE" ] || sel="$name"
    done < <(grep -E '^[^ \t]' <<<"$list")
    entry="$(awk -v name="$sel" '/^[^ \t]/ {on = ($1 == name)} on' <<<"$list")"
    libdesc="$(sed -n 's/^ *library-description: //p' <<<"$entry" | head -n 1)"
    libmanuf="$(sed -n 's/^ *library-manufacturer: //p' <<<"$entry" | head -n 1)"
    [ -n "$libdesc" ] && [ -n "$libmanuf" ] || { echo "p11-kit does not list $MODULE:"; timeout "$T" p11-kit list-modules; return 1; }
    SSSD_P11_URI="pkcs11:library-description=$(sssd_uri_quote "$libdesc");library-manufacturer=$(sssd_uri_quote "$libmanuf")"

    # The certificate mapping: the login key's certificate (its exact
    # subject, issued by the card's CA) is the test user's, the EC key's
    # the EC user's; a rule's name is the user's name (files provider).
    # (The relation && goes first: "<ISSUER>...&&<SUBJECT>..." matches nothing.)
    issuer="$(sssd_regex "$(sssd_dn "$PROV/ca.pem")")"
    (umask 077 && cat >"$SSSD_W/etc/sssd.conf") <<EOF
[sssd]
services = nss, pam
domains = $SSSD_DOMAIN
certificate_verification = no_ocsp
debug_level = 6

[nss]
debug_level = 6

[pam]
pam_cert_auth = True
pam_cert_db_path = /etc/sssd/pki/sssd_auth_ca_db.pem
pam_p11_allowed_services = +$SSSD_SERVICE
p11_uri = $SSSD_P11_URI
p11_child_timeout = 60
p11_wait_for_card_timeout = 5
debug_level = 9

[domain/$SSSD_DOMAIN]
id_provider = files
passwd_files = $SSSD_W/passwd
group_files = $SSSD_W/group
fallback_to_nss = False
debug_level = 6

[certmap/$SSSD_DOMAIN/$SSSD_USER]
matchrule = &&<ISSUER>^$issuer\$<SUBJECT>^$(sssd_regex "$(sssd_dn "$PROV/cert$LOGIN_KEY.pem")")\$

[certmap/$SSSD_DOMAIN/$SSSD_EC_USER]
matchrule = &&<ISSUER>^$issuer\$<SUBJECT>^$(sssd_regex "$(sssd_dn "$PROV/cert$EC_KEY.pem")")\$
EOF
    chown root:root "$SSSD_W/etc/sssd.conf"
    chmod 0600 "$SSSD_W/etc/sssd.conf"
}

# sssd_start: sssd in the foreground, in a mount namespace of its own
# whose /run is a tmpfs (its PID file /run/sssd.pid stays off the host),
# with pcscd's socket directory bound back in, and p11card's disk cache in
# $SSSD_W/cache (XDG_CACHE_HOME, passed on to p11_child), not shared with
# other runs. Waits for the PAM socket.
sssd_start() {
    timeout 10 mount --bind /run/pcscd "$SSSD_W/pcscd" || return 1
    on_exit timeout 10 umount "$SSSD_W/pcscd"
    timeout 900 unshare --mount -- sh -c '
        set -e
        mount -t tmpfs -o mode=0755 tmpfs /run
        mkdir /run/pcscd
        mount --bind "$1" /run/pcscd
        exec env XDG_CACHE_HOME="$2" /usr/sbin/sssd -i --logger=files' sh "$SSSD_W/pcscd" "$SSSD_W/cache" \
        >"$SSSD_W/sssd.out" 2>&1 &
    SSSD_PID=$!
    on_exit stop_pid "$SSSD_PID"
    # Ready: the PAM socket is there and the files domain answers.
    for _ in $(seq 1 300); do
        [ -S /var/lib/sss/pipes/pam ] && timeout 5 getent -s sss passwd "$SSSD_USER" >/dev/null && return 0
        kill -0 "$SSSD_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "sssd's PAM socket did not appear or its files domain does not know $SSSD_USER"
    cat "$SSSD_W/sssd.out"
    tail -20 "$SSSD_W"/log/sssd.log 2>/dev/null
    return 1
}

# sssd_pam USER PIN: pamtester through the test service, the PIN on stdin.
sssd_pam() {
    printf '%s\n' "$2" | timeout 120 pamtester -v "$SSSD_SERVICE" "$1" authenticate 2>&1
}

sssd_logs() {
    echo "-- p11_child.log (tail):"
    tail -25 "$SSSD_W/log/p11_child.log" 2>/dev/null
    echo "-- sssd_pam.log (errors):"
    grep -iE 'error|fail' "$SSSD_W/log/sssd_pam.log" 2>/dev/null | tail -10
}

# sssd_auth_ok [USER]: the PIN asked and the user authenticated.
sssd_auth_ok() {
    local out
    out=$(sssd_pam "${1:-$SSSD_USER}" "$PIN") || { printf '%s\n' "$out"; sssd_logs; return 1; }
    printf '%s\n' "$out"
    grep -q "successfully authenticated" <<<"$out" && grep -q "PIN for " <<<"$out"
}

# The EC key: p11_child signs a SHA-512 hash with CKM_ECDSA (64 bytes, longer
# than a P-256 or P-384 key's order) and verifies the signature.
sssd_auth_ec() {
    sssd_auth_ok "$SSSD_EC_USER" || return 1
    grep -q "Found ECC key using CKM_ECDSA" "$SSSD_W/log/p11_child.log"
}

# sssd_tries: the PIN tries left `p11card status` shows (empty when it
# knows of no wrong PIN since the last right one).
sssd_tries() {
    timeout "$T" "$SSSD_CLI" status 2>/dev/null | sed -n 's/^  PIN: *\([0-9]*\) tr[a-z]* left.*/\1/p' | head -n 1
}

# sssd_tries_counted: the tries left, as a number. A card some module left
# with the PIN verified (OpenSC's leaves virtpiv so) shows none: a login
# and logout by `p11card list --login` (which has the card forget the PIN
# at the end) makes it count again.
sssd_tries_counted() {
    local tries secrets="$SSSD_W/pin"
    tries="$(sssd_tries)"
    if [ -z "$tries" ]; then
        (umask 077 && printf '%s\n' "$PIN" >"$secrets")
        timeout "$T" "$SSSD_CLI" list --login --pin-fd 3 3<"$secrets" >/dev/null 2>&1 || true
        rm -f -- "$secrets"
        tries="$(sssd_tries)"
    fi
    echo "$tries"
}

sssd_wrong_pin() {
    local out rc=0 before after
    before="$(sssd_tries_counted)"
    out=$(sssd_pam "$SSSD_USER" 000000) || rc=$?
    after="$(sssd_tries)"
    printf '%s\n(exit %s; tries before %s, after %s)\n' "$out" "$rc" "${before:-full}" "${after:-?}"
    [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && ! grep -q "successfully authenticated" <<<"$out" &&
        grep -q "PIN for " <<<"$out" || { sssd_logs; return 1; }
    [ -n "$after" ] && [ -n "$before" ] && [ "$after" = $((before - 1)) ]
}

sssd_tries_full() {
    local now
    now="$(sssd_tries_counted)"
    echo "tries now ${now:-?}, at the start $SSSD_TRIES_FULL"
    [ -n "$SSSD_TRIES_FULL" ] && [ "$now" = "$SSSD_TRIES_FULL" ]
}

# After pam_sss's login (p11_child logs out, closes its session and
# finalises) the card does not keep the PIN verified: the tries count shows.
sssd_pin_forgotten() {
    local now out
    out="$(sssd_auth_ok)" || { printf 'the login failed:\n%s\n' "$out"; return 1; }
    now="$(sssd_tries)"
    echo "tries shown after the login: ${now:-none, the card still holds the PIN verified}"
    [ -n "$now" ]
}

# sssd_measure: one authentication's wall time and the APDUs the card saw
# (p11_child runs twice: pre-auth reads the certificates, auth signs).
sssd_measure() {
    local t0 t1 before after name="${1:-}"
    before=$(grep -c ' APDU ' "$APDU_LOG" 2>/dev/null || true)
    t0=$(date +%s%N)
    sssd_pam "$SSSD_USER" "$PIN" >/dev/null || { echo "  (measuring: the login failed)"; return 0; }
    t1=$(date +%s%N)
    after=$(grep -c ' APDU ' "$APDU_LOG" 2>/dev/null || true)
    if [ -n "${P11CARD_SSSD_LOGS:-}" ] && [ -n "$after" ]; then
        mkdir -p "$P11CARD_SSSD_LOGS/$CARD_NAME" &&
            grep ' APDU ' "$APDU_LOG" | tail -n +"$((${before:-0} + 1))" >"$P11CARD_SSSD_LOGS/$CARD_NAME/apdus-one-authentication$name.log" || true
    fi
    echo "  (one pamtester authentication$name: $(((t1 - t0) / 1000000)) ms, $((${after:-0} - ${before:-0})) APDUs)"
}

# SSSD runs p11_child under umask 0177: the cache directory p11card made
# in XDG_CACHE_HOME is still 0700 (enterable), and holds the card's entry.
sssd_cache_dir() {
    ls -la "$SSSD_W/cache" "$SSSD_W/cache/p11card" 2>&1
    [ "$(stat -c %a "$SSSD_W/cache/p11card" 2>/dev/null)" = 700 ] &&
        compgen -G "$SSSD_W/cache/p11card/*.cache" >/dev/null
}

sssd_other_user() {
    local out rc=0
    out=$(sssd_pam "$SSSD_OTHER" "$PIN") || rc=$?
    printf '%s\n(exit %s)\n' "$out" "$rc"
    [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && ! grep -q "successfully authenticated" <<<"$out"
}

# sssd_undone: sssd is gone and the system's directories are back.
sssd_undone() {
    local d busy=""
    ! kill -0 "$SSSD_PID" 2>/dev/null || busy="sssd (PID $SSSD_PID) still runs"
    for d in /etc/sssd /var/lib/sss /var/log/sssd /etc/pam.d /usr/share/p11-kit/modules /etc/pkcs11; do
        ! timeout 5 mountpoint -q "$d" || busy="$busy $d is still mounted over"
    done
    [ ! -e "/etc/pam.d/$SSSD_SERVICE" ] || busy="$busy /etc/pam.d/$SSSD_SERVICE exists"
    echo "$busy"
    [ -z "$busy" ]
}

if [ "${P11CARD_REALSTACK_IN_NS:-}" != 1 ]; then
    echo "  (skipped: SSSD's directories are only mounted over in the real stack's private namespaces)"
elif ! sssd_setup >"$WORK/sssd-setup.log" 2>&1; then
    fail "sssd: setting up SSSD's files"
    tail -20 "$WORK/sssd-setup.log" | sed 's/^/        /'
else
    # The tries of a card no one has given a wrong PIN yet: full.
    SSSD_TRIES_FULL="$(sssd_tries_counted)"
    echo "  ($(/usr/sbin/sssd --version 2>/dev/null | sed 's/^/SSSD /'); p11_uri $SSSD_P11_URI)"
    # (not through check_fn: sssd_start records the PID in this shell)
    if sssd_start >"$WORK/sssd-start.log" 2>&1; then
        pass "sssd -i starts (files domain, pam_cert_auth) and opens its PAM socket"
    else
        fail "sssd -i starts (files domain, pam_cert_auth) and opens its PAM socket"
        tail -20 "$WORK/sssd-start.log" | sed 's/^/        /'
    fi
    check_output "sssd's files domain knows $SSSD_USER (getent passwd through nss_sss)" "^$SSSD_USER:" \
        getent -s sss passwd "$SSSD_USER"
    check_fn "p11card status shows the card's PIN tries ($SSSD_TRIES_FULL) before any login" test -n "$SSSD_TRIES_FULL"
    check_fn "pamtester $SSSD_SERVICE $SSSD_USER: pam_sss/p11_child authenticates with the card's $LOGIN_KEY certificate and the PIN" sssd_auth_ok
    check_fn "pamtester $SSSD_SERVICE $SSSD_USER with a wrong PIN is refused; exactly one PIN try spent" sssd_wrong_pin
    check_fn "pamtester $SSSD_SERVICE $SSSD_USER: the right PIN works again afterwards" sssd_auth_ok
    check_fn "the PIN tries are full again (${SSSD_TRIES_FULL:-?})" sssd_tries_full
    check_fn "pamtester $SSSD_SERVICE $SSSD_OTHER (no certificate maps to it) is refused" sssd_other_user
    check_fn "pamtester $SSSD_SERVICE $SSSD_EC_USER: the EC key $EC_KEY's certificate, CKM_ECDSA over a SHA-512 hash" sssd_auth_ec
    if [ "$(sssd_uri_quote p11card)" = "${SSSD_P11_URI##*library-manufacturer=}" ]; then
        if [ -e "$SSSD_W/cache/p11card" ]; then
            check_fn "p11card's disk cache under p11_child's umask 0177: directory 0700, the card's entry stored" sssd_cache_dir
        else
            echo "  (no disk cache entry: p11card does not cache this card)"
        fi
        check_fn "after the login the card no longer holds the PIN verified (p11card logs the card out)" sssd_pin_forgotten
    else
        echo "  ($(sssd_pin_forgotten | tail -n 1) with this module)"
    fi
    sssd_measure
    # p11-kit loads every registered module into p11_child, whatever
    # p11_uri selects: the other modules (OpenSC's reads the card at
    # C_Initialize) cost time and APDUs unless disabled for it.
    for f in "$SSSD_W"/p11kit-modules/*.module; do
        [ "$f" = "$SSSD_W/p11kit-modules/$SSSD_SERVICE.module" ] || printf 'disable-in: p11_child\n' >>"$f"
    done
    [ ! -f "$SSSD_W/p11kit-modules/$SSSD_SERVICE.module" ] || sssd_measure ", the other p11-kit modules disable-in: p11_child"
    # The end: sssd stopped by its PID, the system's directories back.
    run_cleanups
    check_fn "sssd stopped by its PID, SSSD's directories, /etc/pam.d and p11-kit's modules the system's again" sssd_undone
    # SSSD's logs (p11_child.log: every PKCS#11 step) outlive the run on request.
    if [ -n "${P11CARD_SSSD_LOGS:-}" ]; then
        mkdir -p "$P11CARD_SSSD_LOGS/$CARD_NAME" && cp -a "$SSSD_W/log/." "$SSSD_W/etc/sssd.conf" "$P11CARD_SSSD_LOGS/$CARD_NAME/" || true
    fi
fi
