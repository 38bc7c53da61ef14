# OpenSSH with the module: ssh-keygen -D lists the card's keys, and ssh -I
# logs in to a private sshd (on 127.0.0.1, its own config, host key and
# authorized_keys in $WORK) with the login key (PIV 9A: RSA, PIN through
# SSH_ASKPASS), then with the EC key (PIV 9E). Needs openssh-server
# (installed if missing). Always-authenticate keys (PIV 9C) cannot be used:
# ssh does no context-specific login.
# card-families: piv pkcs15
# (sourced by run.sh: MODULE, PROV, WORK, PIN are set)

SSHD_BIN=/usr/sbin/sshd
if [ ! -x "$SSHD_BIN" ]; then
    echo "  (installing openssh-server for $SSHD_BIN)"
    timeout 600 env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends openssh-server \
        >"$WORK/ssh-apt.log" 2>&1 || tail -5 "$WORK/ssh-apt.log"
fi
SSHDIR="$WORK/ssh"
rm -rf -- "$SSHDIR"
mkdir -p "$SSHDIR"
chmod 700 "$SSHDIR"

# ssh-keygen -D: one public key per key on the card, in slot order, each the
# card's key (compared with the provisioned public key converted by ssh-keygen).
SSH_KEYS="$(timeout "$T" ssh-keygen -D "$MODULE" 2>"$SSHDIR/keygen-D.err" || true)"
check_fn "ssh-keygen -D prints $PUBLIC_KEY_COUNT public keys" test "$(grep -cE '^(ssh-rsa|ecdsa-sha2-nistp[0-9]+) ' <<<"$SSH_KEYS")" -eq "$PUBLIC_KEY_COUNT"
for slot in $CARD_KEYS; do
    want="$(timeout "$T" ssh-keygen -i -m PKCS8 -f "$PROV/pub$slot.pem" | cut -d' ' -f1,2 || true)"
    check_fn "ssh-keygen -D prints the $slot key ($(key_kind "$slot") $(key_bits "$slot"))" \
        grep -qxF "$want" <(cut -d' ' -f1,2 <<<"$SSH_KEYS")
done
timeout "$T" ssh-keygen -i -m PKCS8 -f "$PROV/pub$LOGIN_KEY.pem" >"$SSHDIR/authorized_keys" || true
chmod 600 "$SSHDIR/authorized_keys"

# The server: as the current user (root here), key authentication only.
SSH_USER="$(id -un)"
SSH_PORT="$(free_port)"
timeout "$T" ssh-keygen -q -t ed25519 -N '' -C p11card-test-host -f "$SSHDIR/host_ed25519" </dev/null || true
cat >"$SSHDIR/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $SSH_PORT
HostKey $SSHDIR/host_ed25519
PidFile $SSHDIR/sshd.pid
AuthorizedKeysFile $SSHDIR/authorized_keys
PubkeyAuthentication yes
# (a card may hold more keys than the default 6 tries; ssh offers each)
MaxAuthTries 20
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
AllowUsers $SSH_USER
LogLevel VERBOSE
EOF
# Privilege separation directory (normally made by systemd-tmpfiles).
if [ ! -d /run/sshd ]; then
    mkdir -p /run/sshd && chmod 755 /run/sshd
    on_exit rmdir /run/sshd
fi
check "sshd -t accepts the test configuration" "$SSHD_BIN" -t -f "$SSHDIR/sshd_config"
timeout 900 "$SSHD_BIN" -D -e -f "$SSHDIR/sshd_config" >"$SSHDIR/sshd.log" 2>&1 </dev/null &
SSHD_PID=$!
on_exit stop_pid "$SSHD_PID"
check_fn "sshd listens on 127.0.0.1:$SSH_PORT" wait_port "$SSH_PORT"

# The client: the PIN comes from an SSH_ASKPASS program (forced, no tty).
printf '#!/bin/sh\necho %s\n' "$PIN" >"$SSHDIR/askpass-right"
printf '#!/bin/sh\necho %s\n' 654321 >"$SSHDIR/askpass-wrong"
chmod 700 "$SSHDIR/askpass-right" "$SSHDIR/askpass-wrong"
ssh_card() { # askpass-script: runs `echo logged-in-with-card` on the server
    timeout "$T" env SSH_ASKPASS="$SSHDIR/$1" SSH_ASKPASS_REQUIRE=force DISPLAY=:0 \
        setsid -w ssh -F /dev/null -I "$MODULE" -o IdentityFile=none -o IdentityAgent=none \
        -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=no \
        -o PreferredAuthentications=publickey -o ConnectTimeout=10 \
        -p "$SSH_PORT" "$SSH_USER@127.0.0.1" echo logged-in-with-card </dev/null 2>&1
}
ssh_login() { # askpass-script: the login works and runs the command
    local out
    out=$(ssh_card "$1") || { printf '%s\n' "$out"; return 1; }
    printf '%s\n' "$out"
    grep -qx logged-in-with-card <<<"$out"
}

# The README's ssh recipe as written (the server, its port and a client
# config of the test's own swapped in); ssh asks for the PIN on its terminal.
cat >"$SSHDIR/client_config" <<EOF
StrictHostKeyChecking no
UserKnownHostsFile /dev/null
IdentityFile none
IdentityAgent none
PreferredAuthentications publickey
EOF
ssh_recipe() {
    local out
    readme_recipe ssh "s|alice@server.example.org|-F $SSHDIR/client_config -p $SSH_PORT $SSH_USER@127.0.0.1 echo logged-in-with-card|" \
        >"$SSHDIR/recipe-ssh.sh"
    out=$(run_recipe "$SSHDIR/recipe-ssh.sh") || { printf '%s\n' "$out"; return 1; }
    printf '%s\n' "$out"
    grep -qF "(type-pin: typed the PIN)" <<<"$out" && grep -q "^logged-in-with-card" <<<"$out" &&
        grep -qF "$(cut -d' ' -f1,2 "$SSHDIR/authorized_keys")" <<<"$out"
}
check_fn "README recipe 'ssh': ssh-keygen -D prints the key, ssh -I logs in, PIN typed" ssh_recipe
check_fn "ssh -I logs in with the $LOGIN_KEY key ($(key_kind "$LOGIN_KEY") $(key_bits "$LOGIN_KEY"), PIN by SSH_ASKPASS)" ssh_login askpass-right
check_output "sshd accepted the card's RSA key" "Accepted publickey for $SSH_USER .* RSA SHA256:" cat "$SSHDIR/sshd.log"

# A wrong PIN: no login (and no crash of ssh); then the right PIN again,
# which also resets the card's retry counter.
ssh_wrong_pin() {
    local out rc=0
    out=$(ssh_card askpass-wrong) || rc=$?
    printf '%s\n(exit %s)\n' "$out" "$rc"
    # ssh reports the module's CKR_PIN_INCORRECT as "PIN incorrect"
    [ "$rc" -eq 255 ] && ! grep -q logged-in-with-card <<<"$out" && grep -q "Permission denied" <<<"$out" &&
        grep -q "PKCS#11 login failed: PIN incorrect" <<<"$out"
}
check_fn "ssh -I with a wrong PIN does not log in (PIN incorrect)" ssh_wrong_pin
check_fn "ssh -I logs in again with the right PIN" ssh_login askpass-right

# The card's ECDSA key (PIV 9E: no PIN on the card; ssh still logs in, since
# the token says "login required"): only that key is authorized now (sshd reads
# the file at every connection).
timeout "$T" ssh-keygen -i -m PKCS8 -f "$PROV/pub$EC_KEY.pem" >"$SSHDIR/authorized_keys" || true
check_fn "ssh -I logs in with the $EC_KEY key ($(key_kind "$EC_KEY") $(key_bits "$EC_KEY"))" ssh_login askpass-right
check_output "sshd accepted the card's ECDSA key" "Accepted publickey for $SSH_USER .* ECDSA SHA256:" cat "$SSHDIR/sshd.log"

# ssh-agent with the module (ssh-add -s, PIN by SSH_ASKPASS), and a server
# that accepts 9C and 9E. The client offers the agent's keys in the card's
# order, so the agent tries 9C first: its helper calls C_SignInit, sees
# CKA_ALWAYS_AUTHENTICATE, cannot ask for the PIN of the context login, and
# gives up without C_Sign, leaving the operation active. The agent's next
# C_SignInit (9E) must still work (issue 12; OpenSC's module answers
# CKR_OPERATION_ACTIVE there and this login fails with it).
ssh_agent_suite() {
{
    timeout "$T" ssh-keygen -i -m PKCS8 -f "$PROV/pub$AGENT_REFUSED_KEY.pem"
    timeout "$T" ssh-keygen -i -m PKCS8 -f "$PROV/pub$EC_KEY.pem"
} >"$SSHDIR/authorized_keys" || true
fingerprint() { timeout "$T" ssh-keygen -l -E sha256 -f <(timeout "$T" ssh-keygen -i -m PKCS8 -f "$PROV/pub$1.pem") | cut -d' ' -f2; }
FP_REFUSED="$(fingerprint "$AGENT_REFUSED_KEY" || true)"
FP_EC="$(fingerprint "$EC_KEY" || true)"
AGENT_SOCK="$SSHDIR/agent.sock"
timeout 900 ssh-agent -D -a "$AGENT_SOCK" -P "$MODULE" >"$SSHDIR/agent.log" 2>&1 </dev/null &
AGENT_PID=$!
on_exit stop_pid "$AGENT_PID"
wait_socket() { for _ in $(seq 1 100); do [ -S "$1" ] && return 0; sleep 0.1; done; return 1; }
check_fn "ssh-agent is up" wait_socket "$AGENT_SOCK"
check_output "ssh-add -s loads the card's keys into ssh-agent" "Card added" \
    timeout "$T" env SSH_AUTH_SOCK="$AGENT_SOCK" SSH_ASKPASS="$SSHDIR/askpass-right" SSH_ASKPASS_REQUIRE=force \
    DISPLAY=:0 setsid -w ssh-add -s "$MODULE"
check_output "ssh-agent holds $PUBLIC_KEY_COUNT keys from the card" "^$PUBLIC_KEY_COUNT$" \
    sh -c "SSH_AUTH_SOCK='$AGENT_SOCK' ssh-add -l | grep -c ."
ssh_agent_login() {
    local out
    out=$(timeout "$T" env SSH_AUTH_SOCK="$AGENT_SOCK" setsid -w ssh -v -F /dev/null -o IdentityFile=none \
        -o IdentityAgent="$AGENT_SOCK" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o BatchMode=yes -o PreferredAuthentications=publickey -o ConnectTimeout=10 \
        -p "$SSH_PORT" "$SSH_USER@127.0.0.1" echo logged-in-with-card </dev/null 2>&1) || {
        printf '%s\n' "$out" | grep -E "Offering|accepts|sign|Authenticated|denied"
        return 1
    }
    printf '%s\n' "$out" | grep -E "Offering|accepts|sign|Authenticated"
    grep -qx logged-in-with-card <<<"$out" &&
        # the always-authenticate key was accepted by the server and refused by the agent...
        awk -v fp="$FP_REFUSED" 'index($0, "Server accepts key: ") && index($0, fp) { seen = 1; next }
            seen { exit !/signing failed for .*agent refused operation/ }
            END { if (!seen) exit 1 }' <<<"$out" &&
        # ...and the login went through with the EC key.
        grep -q "Server accepts key: .*ECDSA $FP_EC" <<<"$out"
}
check_fn "ssh through ssh-agent logs in with $EC_KEY after the agent's $AGENT_REFUSED_KEY signature was refused" ssh_agent_login
}
# (only on a card with an always-authenticate key)
[ -z "$AGENT_REFUSED_KEY" ] || ssh_agent_suite
