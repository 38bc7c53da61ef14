# NSS (certutil, modutil, cmsutil from libnss3-tools) with the module in a
# fresh NSS database. (sourced by run.sh: MODULE, PROV, WORK, PIN are set)

# card-families: piv pkcs15
NSSDIR="$WORK/nssdb"
NSSDB="sql:$NSSDIR"
rm -rf -- "$NSSDIR"
mkdir -p "$NSSDIR"
printf '%s\n' "$PIN" >"$WORK/nss-pin.txt"
printf '%s\n' 654321 >"$WORK/nss-badpin.txt"
# nss_re TEXT: TEXT as a literal in an extended regular expression.
nss_re() { sed 's/[][\.*^$(){}+?|]/\\&/g' <<<"$1"; }

check "certutil -N creates an empty NSS database" certutil -N -d "$NSSDB" --empty-password
check_output "modutil -add registers the module" "added to database" \
    modutil -dbdir "$NSSDB" -add p11card -libfile "$MODULE" -force

# The token name as NSS sees it (the reader's slot in certutil -U); the same
# label pkcs11-tool reads.
NSS_TOKEN="$(timeout "$T" certutil -U -d "$NSSDB" </dev/null 2>/dev/null |
    sed -n "/slot: $(nss_re "$READER")/{n;s/^ *token: //p}" || true)"
P11_TOKEN="$(timeout "$T" pkcs11-tool --module "$MODULE" -L 2>/dev/null | sed -n '0,/token label/s/^ *token label *: //p' || true)"
check_fn "certutil -U shows the card's token '$NSS_TOKEN' in $READER" \
    test -n "$NSS_TOKEN" -a "$NSS_TOKEN" = "$P11_TOKEN"

# modutil -list exits non-zero when a slot is empty (vpcd's second reader):
# assert on the output only.
NSS_MODLIST="$(timeout "$T" modutil -dbdir "$NSSDB" -list </dev/null 2>&1 | tr '\n\t' '  ' || true)"
check_output "modutil -list shows the module loaded with the card's token" \
    "p11card +library name: $MODULE .*status: loaded +slot: $(nss_re "$READER") +token: $(nss_re "$NSS_TOKEN") " \
    printf '%s\n' "$NSS_MODLIST"

# certutil -L -h all: the card's certificates, without a PIN (nickname =
# token name:CKA_LABEL; "u,u,u" = NSS found the matching private key).
# certutil asks for the PIN on /dev/tty here (and goes on without it):
# setsid, so that it has no terminal to ask on.
nss_list_certs() { timeout "$T" setsid -w certutil -L -d "$NSSDB" -h all </dev/null 2>/dev/null; }
NSS_CERTS="$(nss_list_certs || true)"
check_fn "certutil -L -h all lists $CERT_COUNT certificates of the card" \
    test "$(grep -cF "$NSS_TOKEN:" <<<"$NSS_CERTS")" -eq "$CERT_COUNT"
for slot in $CARD_KEYS; do
    nick="$NSS_TOKEN:${KEY_LABEL[$slot]}"
    check_output "certutil -L -h all lists '$nick' as a user certificate" \
        "^$(nss_re "$nick") +u,u,u" printf '%s\n' "$NSS_CERTS"
    # The certificate NSS reads is the card's, by CN and byte for byte.
    check_output "certutil -L -n '$nick' shows CN=$(cert_cn "$slot")" "CN=$(cert_cn "$slot")" \
        certutil -L -d "$NSSDB" -h "$NSS_TOKEN" -f "$WORK/nss-pin.txt" -n "$nick"
    timeout "$T" certutil -L -d "$NSSDB" -h "$NSS_TOKEN" -f "$WORK/nss-pin.txt" -n "$nick" -a \
        >"$WORK/nss-cert$slot.pem" 2>/dev/null </dev/null || true
    check "certificate '$nick' read by NSS equals cert$slot.pem" \
        cmp <(openssl x509 -in "$PROV/cert$slot.pem" -outform DER) \
            <(openssl x509 -in "$WORK/nss-cert$slot.pem" -outform DER 2>/dev/null)
done

# certutil -K: the private keys, after C_Login with the PIN from a file.
nss_list_keys() { timeout "$T" certutil -K -d "$NSSDB" -h all -f "$WORK/nss-pin.txt" </dev/null 2>&1; }
NSS_KEYS="$(nss_list_keys || true)"
for slot in $CARD_KEYS; do
    check_output "certutil -K -h all lists the $(key_kind "$slot") key $(slot_id "$slot") '${KEY_LABEL[$slot]}'" \
        "^< ?[0-9]+> +$(key_kind "$slot") +$(slot_id "$slot") +$(nss_re "${KEY_LABEL[$slot]}")\$" printf '%s\n' "$NSS_KEYS"
done

# A wrong PIN: certutil gives up after one try with SEC_ERROR_BAD_PASSWORD
# (no crash); the right PIN works afterwards and restores the retry counter.
nss_wrong_pin() {
    local out rc=0
    out=$(timeout "$T" certutil -K -d "$NSSDB" -h "$NSS_TOKEN" -f "$WORK/nss-badpin.txt" </dev/null 2>&1) || rc=$?
    printf '%s\n(exit %s)\n' "$out" "$rc"
    # non-zero, but no timeout (124) and no signal (128+N)
    [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && { [ "$rc" -lt 128 ] || [ "$rc" -gt 192 ]; } && grep -q "SEC_ERROR_BAD_PASSWORD" <<<"$out" && ! grep -qE '^< ?[0-9]+>' <<<"$out"
}
check_fn "certutil -K with a wrong PIN fails with SEC_ERROR_BAD_PASSWORD" nss_wrong_pin
check_output "certutil -K with the right PIN works afterwards" "^< ?[0-9]+> +$(key_kind "$LOGIN_KEY") +$(slot_id "$LOGIN_KEY") +$(nss_re "${KEY_LABEL[$LOGIN_KEY]}")" \
    certutil -K -d "$NSSDB" -h "$NSS_TOKEN" -f "$WORK/nss-pin.txt"

# NSS signs with every key (cmsutil: CMS SignedData; NSS does the
# context-specific login for 9C itself); openssl verifies against the CA.
check "certutil -A imports the card's CA as trusted" \
    certutil -A -d "$NSSDB" -n p11card-test-ca -t CT,C,C -i "$PROV/ca.pem"
echo "signed by the card through NSS" >"$WORK/nss-data.txt"
nss_cms_sign() { # slot
    local slot="$1" out="$WORK/nss-$1.p7"
    # -Y NONE: no S/MIME encryption-key preference (else cmsutil wants a
    # certificate fit for encryption too, which e.g. owncard's 9A is not);
    # -G: a signing-time attribute, so that there are signed attributes
    # (without any, NSS 3.87 puts ECDSA signatures into the CMS as raw r||s,
    # which no verifier accepts: an NSS bug, not the module's).
    timeout "$T" cmsutil -S -d "$NSSDB" -N "$NSS_TOKEN:${KEY_LABEL[$slot]}" -G -Y NONE -f "$WORK/nss-pin.txt" \
        -i "$WORK/nss-data.txt" -o "$out" </dev/null || return 1
    timeout "$T" openssl cms -verify -inform DER -in "$out" -CAfile "$PROV/ca.pem" -purpose any -out "$out.txt" || return 1
    cmp "$out.txt" "$WORK/nss-data.txt" || return 1
    # the signer is the slot's certificate
    timeout "$T" openssl cms -verify -inform DER -in "$out" -noverify -signer "$out.signer.pem" -out /dev/null || return 1
    cmp <(openssl x509 -in "$out.signer.pem" -outform DER) <(openssl x509 -in "$PROV/cert$slot.pem" -outform DER)
}
for slot in $SIGN_KEYS; do
    check_fn "cmsutil -S signs with key $(slot_id "$slot") ($slot, $(key_kind "$slot") $(key_bits "$slot")), openssl cms verifies" \
        nss_cms_sign "$slot"
done

# TLS client authentication with NSS (tstclnt) and each card key against
# openssl s_server, which requires a client certificate from the card's CA
# (-Verify 1 -verify_return_error); its -www page shows the protocol and the
# client certificate it verified. TLS 1.3 signs RSA with RSA-PSS
# (CKM_RSA_PKCS_PSS).
NSS_TLS="$WORK/nss-tls"
mkdir -p "$NSS_TLS"
timeout "$T" openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost -days 2 \
    -keyout "$NSS_TLS/srv.key" -out "$NSS_TLS/srv.pem" >/dev/null 2>&1 || true
printf 'GET / HTTP/1.0\r\n\r\n' >"$NSS_TLS/req.txt"
nss_tls() { # version [nickname slot]: one s_server connection, tstclnt fetches its page
    local v="$1" nick="${2:-}" slot="${3:-}" port pid log out rc=0
    port="$(free_port)"
    log="$NSS_TLS/s_server-$port.log"
    (cd "$NSS_TLS" && exec timeout 60 openssl s_server -accept "127.0.0.1:$port" -naccept 1 -cert srv.pem -key srv.key \
        -CAfile "$PROV/ca.pem" -Verify 1 -verify_return_error -www) >"$log" 2>&1 </dev/null &
    pid=$!
    # (not wait_port: its probe connection would use up -naccept 1)
    for _ in $(seq 1 100); do grep -q '^ACCEPT' "$log" 2>/dev/null && break; sleep 0.1; done
    # stdin from a file: with a pipe tstclnt waits on after the reply
    # (without a nickname: no database (-D), else NSS picks a card certificate)
    local who=(-D)
    [ -z "$nick" ] || who=(-d "$NSSDB" -n "$nick" -W "$WORK/nss-pin.txt")
    out=$(timeout "$T" tstclnt -h 127.0.0.1 -p "$port" "${who[@]}" -o -V "$v:$v" <"$NSS_TLS/req.txt" 2>&1) || rc=$?
    stop_pid "$pid"
    out=$(grep -E 'Protocol +:|Peer signature type|Subject:|No peer certificate|tstclnt:|alert' <<<"$out")
    printf '%s\n(exit %s)\n' "$out" "$rc"
    [ "$rc" -eq 0 ] && grep -qE "Protocol +: TLSv${v#tls}\$" <<<"$out" &&
        grep -qE "Subject: .*CN=$(cert_cn "$slot")\$" <<<"$out" || return 1
    # TLS 1.3: RSA-PSS for RSA keys
    if [ "$v" = tls1.3 ]; then
        case "$(key_kind "$slot")" in
            rsa) grep -qx "Peer signature type: RSA-PSS" <<<"$out" ;;
            ec) grep -qx "Peer signature type: ECDSA" <<<"$out" ;;
        esac
    fi
}
nss_tls_refused() { # version: the page is not served without a client certificate
    local out
    out=$(nss_tls "$1")
    printf '%s\n' "$out"
    ! grep -qE 'Protocol +:' <<<"$out"
}
check_fn "tstclnt without a client certificate is refused by s_server (control)" nss_tls_refused tls1.3
for v in tls1.2 tls1.3; do
    for slot in $SIGN_KEYS; do
        check_fn "tstclnt $v client auth with key $(slot_id "$slot") ($slot, $(key_kind "$slot") $(key_bits "$slot"))" \
            nss_tls "$v" "$NSS_TOKEN:${KEY_LABEL[$slot]}" "$slot"
    done
done
