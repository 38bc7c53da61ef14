# card-families: piv pkcs15
# Issue 5 on the real stack: cards pulled and put back, pcscd restarted,
# processes and threads sharing the card, fork, polling without card I/O,
# always-authenticate — with one long-lived client process
# (ffi/examples/real_life_client.rs) and OpenSC's pkcs11-tool.
# (sourced by run.sh once per card: MODULE, PROV, WORK, PIN, APDU_LOG,
# CARD_NAME, CURRENT_CARD_DIR and VIRTPIV_RUN_DIR are set)
#
# Pulling the card = killing the virtual card's process (by the PID its
# start.sh recorded); putting it back = start.sh again, which reuses the
# running pcscd. Restarting pcscd = stopping the pcscd that start.sh started
# (by its recorded PID; a pcscd the card found running is left alone and the
# restart tests are skipped) and starting it the way start.sh does; the
# virtual card reconnects by itself. The suite leaves the card and pcscd
# running, as it found them.
#
# The keys come from card_manifest (lib.sh): LOGIN_KEY signs after C_Login,
# EC_KEY is the threads' second key, ALWAYS_AUTH_KEY (with ALWAYS_AUTH_PIN,
# default the user PIN) the always-authenticate one. The PKCS#15 (MyEID)
# card is cardsim-vpcd with an image file: the card pulled is put back with
# the image it had when it was pulled (start.sh would otherwise copy the
# committed personalised image, which is not the card that was provisioned
# with P11CARD_PKCS15_PERSONALISE=1).

RL="$WORK/real-life"
mkdir -p "$RL"
RL_CLIENT="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/examples/real_life_client"
case "$CARD_NAME" in
    virtpiv)
        RL_CARD_PIDFILE="$VIRTPIV_RUN_DIR/virtpiv.pid"
        RL_CARD_COMM=virtpiv
        RL_PCSCD_PIDFILE="$VIRTPIV_RUN_DIR/pcscd.pid"
        RL_READER="${VIRTPIV_READER:-${VIRTPIV_READER_LABEL:-Virtual PCD} 00 00}"
        ;;
    owncard)
        RL_CARD_PIDFILE="${OWNCARD_RUN_DIR:-$VIRTPIV_RUN_DIR}/cardsim-vpcd.pid"
        RL_CARD_COMM=cardsim-vpcd
        RL_PCSCD_PIDFILE="${OWNCARD_RUN_DIR:-$VIRTPIV_RUN_DIR}/owncard-pcscd.pid"
        RL_READER="${OWNCARD_READER:-Virtual PCD 00 00}"
        ;;
    owncard-myeid)
        RL_CARD_PIDFILE="$VIRTPIV_RUN_DIR/cardsim-vpcd.pid"
        RL_CARD_COMM=cardsim-vpcd
        RL_PCSCD_PIDFILE="$VIRTPIV_RUN_DIR/myeid-pcscd.pid"
        RL_READER="$READER"
        ;;
    *)
        RL_CARD_PIDFILE=""
        ;;
esac
# The card's image when it was pulled (the MyEID card only).
RL_IMAGE="$RL/pulled-card.image"
rm -f -- "$RL_IMAGE"
RL_LOGIN_ID="$(slot_id "$LOGIN_KEY")"
RL_AA_KEY="${ALWAYS_AUTH_KEY:-}"

rl_skip() { printf '  skip  %s\n' "$*"; }

# rl_pid PIDFILE COMM: prints the PID if that live process has that name.
rl_pid() {
    local pid stat
    [ -f "$1" ] || return 1
    pid="$(cat "$1" 2>/dev/null)"
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] || return 1
    stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [ "${stat%% *}" != Z ] || return 1
    echo "$pid"
}

rl_card_present() { timeout 10 opensc-tool -r "$RL_READER" -a >/dev/null 2>&1; }

# Pulls the card: stops the card process (only ours, by PID).
rl_pull_card() {
    local pid
    pid="$(rl_pid "$RL_CARD_PIDFILE" "$RL_CARD_COMM")" || { echo "no card process started by start.sh"; return 1; }
    stop_pid "$pid"
    rm -f -- "$RL_CARD_PIDFILE"
    if [ "$CARD_NAME" = owncard-myeid ]; then
        cp -- "${MYEID_IMAGE:-$VIRTPIV_RUN_DIR/card.image}" "$RL_IMAGE" || { echo "no card image to keep"; return 1; }
    fi
    for _ in $(seq 1 50); do
        rl_card_present || return 0
        sleep 0.2
    done
    echo "a card is still in '$RL_READER' after the card process stopped"
    return 1
}

# rl_start_card: the card's start.sh (it reuses the running pcscd); the
# MyEID card with the image it had when it was pulled.
rl_start_card() {
    if [ "$CARD_NAME" = owncard-myeid ] && [ -f "$RL_IMAGE" ]; then
        MYEID_PERSONALISED="$RL_IMAGE" timeout 120 "$CURRENT_CARD_DIR/start.sh" >>"$RL/card.log" 2>&1
    else
        timeout 120 "$CURRENT_CARD_DIR/start.sh" >>"$RL/card.log" 2>&1
    fi
}

# Puts the card back.
rl_insert_card() {
    rl_start_card || {
        echo "start.sh failed:"; tail -5 "$RL/card.log"; return 1
    }
}

# Restarts the pcscd that the card's start.sh started, and waits for the
# card to be back in its reader.
rl_restart_pcscd() {
    local pid args=(--foreground)
    pid="$(rl_pid "$RL_PCSCD_PIDFILE" pcscd)" || { echo "pcscd was not started by start.sh"; return 1; }
    stop_pid "$pid"
    if [ "$CARD_NAME" = virtpiv ] && [ -n "${VIRTPIV_READER_LABEL:-}" ]; then
        args+=(--config "$VIRTPIV_RUN_DIR/reader.conf.d")
    elif [ "$CARD_NAME" = owncard-myeid ]; then
        args+=(--config "$VIRTPIV_RUN_DIR/reader.conf.d")
    fi
    setsid pcscd "${args[@]}" >>"$(dirname "$RL_PCSCD_PIDFILE")/pcscd.log" 2>&1 </dev/null &
    echo $! >"$RL_PCSCD_PIDFILE"
    for _ in $(seq 1 150); do
        rl_card_present && return 0
        sleep 0.2
    done
    echo "no card in '$RL_READER' 30 s after pcscd was restarted"
    return 1
}

# Leaves the card (and the pcscd start.sh uses) running.
rl_restore() {
    if ! rl_pid "$RL_CARD_PIDFILE" "$RL_CARD_COMM" >/dev/null || ! rl_card_present; then
        rl_start_card
    fi
}

# rl_start_client NAME ARGS...: the client in the background (output in
# $RL/NAME.out, signature in $RL/NAME.sig); its PID in RL_CPID.
rl_start_client() {
    local name="$1"; shift
    mkdir -p "$RL/sync-$name"
    P11CARD_PIN="$PIN" P11CARD_TOKEN_LABEL="$TOKEN_LABEL" P11CARD_SYNC="$RL/sync-$name" \
        P11CARD_SIG_OUT="$RL/$name.sig" P11CARD_KEY_ID="$RL_LOGIN_ID" \
        P11CARD_SECOND_KEY_ID="$(slot_id "$EC_KEY")" \
        P11CARD_AA_KEY_ID="${RL_AA_KEY:+$(slot_id "$RL_AA_KEY")}" P11CARD_AA_PIN="${ALWAYS_AUTH_PIN:-}" \
        timeout 180 "$RL_CLIENT" "$MODULE" "$@" >"$RL/$name.out" 2>&1 </dev/null &
    RL_CPID=$!
}

# rl_wait_line NAME PATTERN SECONDS: until the client printed PATTERN
# (fails early when it printed FAIL).
rl_wait_line() {
    local out="$RL/$1.out" deadline=$((SECONDS + $3))
    while [ "$SECONDS" -lt "$deadline" ]; do
        grep -q -- "$2" "$out" 2>/dev/null && return 0
        grep -q '^FAIL' "$out" 2>/dev/null && return 1
        sleep 0.1
    done
    echo "the client did not print '$2' within $3 s"
    return 1
}

# rl_finish NAME PID: waits for the client, shows its output, returns its status.
rl_finish() {
    local rc=0
    wait "$2" || rc=$?
    sed 's/^/client: /' "$RL/$1.out"
    [ "$rc" -eq 0 ] || echo "client exit status $rc"
    return "$rc"
}

# rl_abort NAME PID: stops the client, shows its output, puts the card back.
rl_abort() {
    stop_pid "$2"
    rl_finish "$1" "$2"
    rl_restore
    return 1
}

# rl_verify_sig NAME KEY: openssl checks $RL/NAME.sig over its data with the
# card's public key KEY ($PROV/pubKEY.pem).
rl_verify_sig() {
    local sig="$RL/$1.sig" pub="$PROV/pub$2.pem"
    [ -s "$sig" ] || { echo "no signature written"; return 1; }
    if [ "$(key_kind "$2")" = ec ]; then
        raw_to_der "$sig" "$sig.der"
        sig="$sig.der"
    fi
    timeout "$T" openssl dgst -sha256 -verify "$pub" -signature "$sig" "$RL/$1.sig.data"
}

rl_apdus() { grep -c ' APDU ' "$APDU_LOG" 2>/dev/null || echo 0; }

# ----- one process through a card pulled and put back ------------------------

rl_removal() {
    local pid
    rl_start_client removal removal
    pid=$RL_CPID
    rl_wait_line removal ready-to-pull 60 || { rl_abort removal "$pid"; return 1; }
    rl_pull_card || { rl_abort removal "$pid"; return 1; }
    rl_wait_line removal ready-to-insert 30 || { rl_abort removal "$pid"; return 1; }
    rl_insert_card || { rl_abort removal "$pid"; return 1; }
    rl_finish removal "$pid" || return 1
    rl_verify_sig removal "$LOGIN_KEY"
}

# ----- one process through a pcscd restart -----------------------------------------

rl_restart() { # SCENARIO (restart | restart-waiting)
    local pid name="$1"
    rl_start_client "$name" "$name"
    pid=$RL_CPID
    rl_wait_line "$name" ready-to-restart 60 || { rl_abort "$name" "$pid"; return 1; }
    rl_restart_pcscd || { rl_abort "$name" "$pid"; return 1; }
    touch "$RL/sync-$name/restarted"
    rl_finish "$name" "$pid" || { rl_restore; return 1; }
    rl_verify_sig "$name" "$LOGIN_KEY"
}

# ----- the card reset by another process -----------------------------------------------

rl_reset() {
    local pid
    rl_start_client reset reset
    pid=$RL_CPID
    rl_wait_line reset ready-to-reset 60 || { rl_abort reset "$pid"; return 1; }
    timeout "$T" opensc-tool -r "$RL_READER" --reset >"$RL/reset-tool.out" 2>&1 || {
        echo "opensc-tool --reset failed:"; cat "$RL/reset-tool.out"; rl_abort reset "$pid"; return 1
    }
    touch "$RL/sync-reset/reset-done"
    rl_finish reset "$pid" || return 1
    rl_verify_sig reset "$LOGIN_KEY"
}

# ----- login state belongs to the process -------------------------------------------------

# While one process is logged in (the card's PIN verified), pkcs11-tool
# without --login must not get a signature from the PIN-protected key.
rl_no_login() {
    local pid rc=0 release="$RL/release-nologin"
    rm -f -- "$release" "$RL/nologin-tool.sig"
    rl_start_client nologin sign-loop 1 --linger-until "$release"
    pid=$RL_CPID
    rl_wait_line nologin loop-done 60 || { rl_abort nologin "$pid"; return 1; }
    printf 'not mine' >"$RL/nologin.data"
    if timeout "$T" pkcs11-tool --module "$MODULE" --sign --id "$RL_LOGIN_ID" -m SHA256-RSA-PKCS \
        -i "$RL/nologin.data" -o "$RL/nologin-tool.sig" >"$RL/nologin-tool.out" 2>&1 \
        && [ -s "$RL/nologin-tool.sig" ]; then
        echo "pkcs11-tool signed with key $RL_LOGIN_ID without logging in:"; cat "$RL/nologin-tool.out"
        rc=1
    fi
    touch "$release"
    rl_finish nologin "$pid" || rc=1
    return "$rc"
}

# ----- threads in one process ------------------------------------------------------------------

rl_threads() {
    local pid
    rl_start_client threads threads 8 5
    pid=$RL_CPID
    rl_finish threads "$pid" || return 1
    rl_verify_sig threads "$LOGIN_KEY"
}

# ----- two processes on the card at once --------------------------------------------

rl_two_processes() { # NAME ROUNDS_A ROUNDS_B PAUSE_MS LINGER(yes|no)
    local name="$1" a b rc=0 go="$RL/go-$1" release="$RL/release-$1" linger=()
    rm -f -- "$go" "$release"
    [ "$5" = yes ] && linger=(--linger-until "$release")
    rl_start_client "$name-a" sign-loop "$2" --start-when "$go" --pause-ms "$4" "${linger[@]}"
    a=$RL_CPID
    rl_start_client "$name-b" sign-loop "$3" --start-when "$go" --pause-ms "$4" "${linger[@]}"
    b=$RL_CPID
    if ! rl_wait_line "$name-a" ready-to-start 60 || ! rl_wait_line "$name-b" ready-to-start 60; then
        stop_pid "$a"; stop_pid "$b"; rl_finish "$name-a" "$a"; rl_finish "$name-b" "$b"
        return 1
    fi
    touch "$go"
    if [ "$5" = yes ]; then
        rl_wait_line "$name-a" loop-done 120 && rl_wait_line "$name-b" loop-done 120
        touch "$release"
    fi
    rl_finish "$name-a" "$a" || rc=1
    rl_finish "$name-b" "$b" || rc=1
    [ "$rc" -eq 0 ] && rl_verify_sig "$name-a" "$LOGIN_KEY" && rl_verify_sig "$name-b" "$LOGIN_KEY"
}

# ----- polling sends no APDU ----------------------------------------------------------

rl_polling() {
    local pid before after
    rl_start_client poll poll 100
    pid=$RL_CPID
    rl_wait_line poll poll-ready 60 || { rl_abort poll "$pid"; return 1; }
    sleep 0.3
    before=$(rl_apdus)
    touch "$RL/sync-poll/poll-go"
    rl_wait_line poll poll-done 60 || { rl_abort poll "$pid"; return 1; }
    sleep 0.3
    after=$(rl_apdus)
    touch "$RL/sync-poll/poll-exit"
    rl_finish poll "$pid" || return 1
    echo "APDUs during 100 polling rounds: $((after - before))"
    [ "$after" -eq "$before" ]
}

# ----- always-authenticate ---------------------------------------------------------------

rl_always_auth() {
    local pid
    rl_start_client always-auth always-auth
    pid=$RL_CPID
    rl_finish always-auth "$pid" || return 1
    rl_verify_sig always-auth "$RL_AA_KEY"
}

# ----- pkcs11-tool's thread and fork tests -------------------------------------------

# Four threads, each: C_Initialize (with and without CKF_OS_LOCKING_OK),
# C_GetInfo, C_GetSlotList, C_GetTokenInfo of the first slot (OpenSC 0.23
# syntax: two-letter commands run together, no separators: IN = C_Initialize
# (NULL), IL = with CKF_OS_LOCKING_OK, GI, SL, Tn = token of slot index n,
# Pn = pause n seconds). pkcs11-tool exits 0 even when a thread failed; its
# summary line says "all threads have ended with CKR_OK" when none did.
rl_test_threads() {
    local out label
    label="$TOKEN_LABEL"
    out=$(timeout 90 pkcs11-tool --module "$MODULE" --test-threads ILGISLT0 --test-threads INGISLT0 \
        --test-threads ILSLT0GIT0 --test-threads P1ILSLT0GI -L 2>&1) || { echo "$out"; echo "exit status $?"; return 1; }
    echo "$out"
    grep -q "all threads have ended with CKR_OK" <<<"$out" || return 1
    ! grep -q -e "some errors" -e "Unknown test" -e "slot not available" <<<"$out" || return 1
    [ "$(grep -c "C_GetTokenInfo from slot_index 0" <<<"$out")" -ge 4 ] || return 1
    grep -q "token label *: $label" <<<"$out"
}

rl_test_fork_sign() {
    local sig="$RL/fork.sig"
    printf 'p11card real life' >"$RL/fork.sig.data"
    timeout "$T" pkcs11-tool --module "$MODULE" --test-fork --login --pin "$PIN" --sign --id "$RL_LOGIN_ID" \
        -m SHA256-RSA-PKCS -i "$RL/fork.sig.data" -o "$sig" || return 1
    rl_verify_sig fork "$LOGIN_KEY"
}

# ----- the suite ------------------------------------------------------------------------

if [ -z "$RL_CARD_PIDFILE" ]; then
    fail "real-life: no way to pull card $CARD_NAME"
elif ! (cd "$REPO_ROOT" && timeout 1200 cargo build --release -p p11card-pkcs11 --example real_life_client) >"$RL/build.log" 2>&1; then
    fail "real-life: building ffi/examples/real_life_client"
    tail -20 "$RL/build.log" | sed 's/^/        /'
else
    on_exit rl_restore

    check_fn "pulled card: one process sees C_WaitForSlotEvent report the removal, CKR_TOKEN_NOT_PRESENT, its session closed, then the card back: log in and sign again" \
        rl_removal

    if rl_pid "$RL_PCSCD_PIDFILE" pcscd >/dev/null; then
        check_fn "pcscd restarted while the client was idle: the same process logs in and signs at the first try" \
            rl_restart restart
        check_fn "pcscd restarted while the client waited in C_WaitForSlotEvent: it sees the token go and come back, logs in and signs" \
            rl_restart restart-waiting
    else
        rl_skip "pcscd restarts: the pcscd in use was not started by $CARD_NAME's start.sh"
    fi

    check_fn "card reset by another process (opensc-tool --reset): the same session gets CKR_USER_NOT_LOGGED_IN, then C_Login and signing work" \
        rl_reset
    check_fn "while one process is logged in, pkcs11-tool without --login gets no signature from key $RL_LOGIN_ID" \
        rl_no_login
    check_fn "8 threads of one process, each with its own session, sign 5 times each (keys $RL_LOGIN_ID and $(slot_id "$EC_KEY")), all verified" \
        rl_threads
    check_fn "two processes signing on the same card at the same time both succeed (20 signatures each)" \
        rl_two_processes together 20 20 0 yes
    check_fn "one process logging out and exiting while another still signs leaves the other's login alone" \
        rl_two_processes staggered 12 2 150 no

    check_fn "100 rounds of C_GetInfo/C_GetSlotList/C_GetSlotInfo/C_GetTokenInfo/C_GetSessionInfo send no APDU" \
        rl_polling

    if [ -n "$RL_AA_KEY" ]; then
        check_fn "always-authenticate key $(slot_id "$RL_AA_KEY") ($RL_AA_KEY${ALWAYS_AUTH_PIN:+, its own PIN}): C_SignInit, C_GetSessionInfo, C_Login(CKU_CONTEXT_SPECIFIC), C_GetSessionInfo, sign; openssl verifies" \
            rl_always_auth
    else
        rl_skip "always-authenticate: $CARD_NAME has no always-authenticate key (ALWAYS_AUTH_KEY)"
    fi

    check_fn "pkcs11-tool --test-threads (4 threads: C_Initialize with and without CKF_OS_LOCKING_OK, C_GetInfo, C_GetSlotList, C_GetTokenInfo)" \
        rl_test_threads
    check_output "pkcs11-tool --test-fork: C_Initialize in a forked child, then the parent lists the token" \
        "token label *: $TOKEN_LABEL" pkcs11-tool --module "$MODULE" --test-fork -L
    check_fn "pkcs11-tool --test-fork, then the parent logs in and signs; openssl verifies" \
        rl_test_fork_sign

    rl_restore
fi
