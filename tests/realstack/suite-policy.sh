# The algorithm policy (issue 16) with real consumers: under the `strict`
# preset a TLS 1.3 client-certificate login with the card's EC key works
# (GnuTLS), SHA-1 signatures and PKCS#1 v1.5 decryption are refused
# (pkcs11-tool: CKR_MECHANISM_INVALID), OAEP still decrypts; with
# `min_rsa_bits = 3072` the card's RSA-2048 login key shows no private key.
# The policy comes from a configuration file named by P11CARD_CONFIG. The
# same file keeps an audit trail: after the TLS login and a wrong PIN it
# holds the logins and the signature, and no PIN and no signed data.
# card-families: piv pkcs15
# (sourced by run.sh)

source "$(dirname "${BASH_SOURCE[0]}")/tls-server.sh"
POLICY_DIR="$WORK/policy"
mkdir -p "$POLICY_DIR"
AUDIT_FILE="$POLICY_DIR/audit.log"
printf '[policy]\npreset = "strict"\n\n[audit]\nenabled = true\nfile = "%s"\n' "$AUDIT_FILE" >"$POLICY_DIR/strict.toml"
printf '[policy]\nmin_rsa_bits = 3072\n' >"$POLICY_DIR/rsa3072.toml"
STRICT=(env "P11CARD_CONFIG=$POLICY_DIR/strict.toml")
P11S=("${STRICT[@]}" pkcs11-tool --module "$MODULE")
head -c 32 /dev/urandom >"$WORK/policy-in.bin"

start_tls_server
policy_tls_login() {
    local out
    out=$(printf 'GET / HTTP/1.0\r\n\r\n' | "${STRICT[@]}" GNUTLS_PIN="$PIN" timeout "$T" gnutls-cli --provider "$MODULE" \
        --x509certfile "$(key_uri "$EC_KEY" cert)" --x509keyfile "$(key_uri "$EC_KEY" private)" \
        --x509cafile "$SERVER_CA" --priority "NORMAL:-VERS-ALL:+VERS-TLS1.3" \
        -p "$TLS_PORT" localhost 2>&1) || { echo "$out"; return 1; }
    grep -q "Subject: .*CN=$(cert_cn "$EC_KEY")" <<<"$out" || { echo "$out"; return 1; }
}
check_fn "strict preset: gnutls-cli TLS 1.3 client auth with the $(key_kind "$EC_KEY") $(key_bits "$EC_KEY") key $(slot_id "$EC_KEY")" \
    policy_tls_login
check_output "strict preset: SHA1-RSA-PKCS is not listed" "^0$" \
    bash -c "$(printf '%q ' "${P11S[@]}") -M | grep -c 'SHA1-RSA-PKCS,' ; true"
check_output "strict preset: a SHA-1 RSA signature is refused (CKR_MECHANISM_INVALID)" "CKR_MECHANISM_INVALID" \
    bash -c "$(printf '%q ' "${P11S[@]}") --login --pin $PIN --sign --id $(slot_id "$LOGIN_KEY") -m SHA1-RSA-PKCS -i $(printf '%q' "$WORK/policy-in.bin") 2>&1; true"
check_output "strict preset: a SHA-1 ECDSA signature is refused (CKR_MECHANISM_INVALID)" "CKR_MECHANISM_INVALID" \
    bash -c "$(printf '%q ' "${P11S[@]}") --login --pin $PIN --sign --id $(slot_id "$EC_KEY") -m ECDSA-SHA1 -i $(printf '%q' "$WORK/policy-in.bin") 2>&1; true"
for key in $DECRYPT_KEYS; do
    [ "$(key_kind "$key")" = rsa ] || continue
    echo "policy" >"$WORK/policy-plain.txt"
    openssl pkeyutl -encrypt -pubin -inkey "$PROV/pub$key.pem" -in "$WORK/policy-plain.txt" -out "$WORK/policy-enc-$key.bin"
    check_output "strict preset: RSA-PKCS decryption with key $(slot_id "$key") is refused (CKR_MECHANISM_INVALID)" \
        "CKR_MECHANISM_INVALID" \
        bash -c "$(printf '%q ' "${P11S[@]}") --login --pin $PIN --decrypt --id $(slot_id "$key") -m RSA-PKCS -i $(printf '%q' "$WORK/policy-enc-$key.bin") 2>&1; true"
    openssl pkeyutl -encrypt -pubin -inkey "$PROV/pub$key.pem" -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 \
        -pkeyopt rsa_mgf1_md:sha256 -in "$WORK/policy-plain.txt" -out "$WORK/policy-oaep-$key.bin"
    check_output "strict preset: RSA-OAEP decryption with key $(slot_id "$key") works" "^policy" \
        "${P11S[@]}" --login --pin "$PIN" --decrypt --id "$(slot_id "$key")" -m RSA-PKCS-OAEP --hash-algorithm SHA256 \
        --mgf MGF1-SHA256 -i "$WORK/policy-oaep-$key.bin"
    break
done
check_output "strict preset: a SHA-256 RSA signature with key $(slot_id "$LOGIN_KEY") works" "." \
    "${P11S[@]}" --login --pin "$PIN" --sign --id "$(slot_id "$LOGIN_KEY")" -m SHA256-RSA-PKCS -i "$WORK/policy-in.bin" \
    -o "$WORK/policy-sig.bin"
policy_rsa_key_hidden() {
    local out
    out=$(env "P11CARD_CONFIG=$POLICY_DIR/rsa3072.toml" timeout "$T" pkcs11-tool --module "$MODULE" \
        --login --pin "$PIN" -O --type privkey 2>&1) || { echo "$out"; return 1; }
    echo "$out"
    ! grep -q "ID: *$(slot_id "$LOGIN_KEY")\$" <<<"$out" && grep -q "ID: *$(slot_id "$EC_KEY")\$" <<<"$out"
}
check_fn "min_rsa_bits = 3072: the RSA-$(key_bits "$LOGIN_KEY") key $(slot_id "$LOGIN_KEY") shows no private key, the EC key does" \
    policy_rsa_key_hidden
# A card with an RSA-1024 key: the strict preset hides its private key;
# without a policy it is there.
policy_legacy_key() { # config: prints the private keys' IDs
    env "P11CARD_CONFIG=$1" timeout "$T" pkcs11-tool --module "$MODULE" --login --pin "$PIN" -O --type privkey 2>&1 |
        sed -n 's/^ *ID: *//p'
}
policy_legacy_offered() {
    local ids
    ids=$(policy_legacy_key "$POLICY_DIR/none.toml")
    echo "$ids"
    grep -qx "$LEGACY_RSA_KEY" <<<"$ids"
}
policy_legacy_hidden() {
    local ids
    ids=$(policy_legacy_key "$POLICY_DIR/strict.toml")
    echo "$ids"
    grep -qx "$(slot_id "$LOGIN_KEY")" <<<"$ids" && ! grep -qx "$LEGACY_RSA_KEY" <<<"$ids"
}
if [ -n "$LEGACY_RSA_KEY" ]; then
    printf '# no policy\n' >"$POLICY_DIR/none.toml"
    check_fn "no policy: the RSA-$(key_bits "$LEGACY_RSA_KEY") key $LEGACY_RSA_KEY is offered" policy_legacy_offered
    check_fn "strict preset: the RSA-$(key_bits "$LEGACY_RSA_KEY") key $LEGACY_RSA_KEY shows no private key (the others do)" \
        policy_legacy_hidden
fi

# The audit trail of all the above: a wrong PIN (tries left), then the
# TLS login's PIN and signature; never a PIN, never the data signed.
check_output "strict preset + audit: a wrong PIN is refused" "CKR_PIN_INCORRECT" \
    bash -c "$(printf '%q ' "${P11S[@]}") --login --pin 11223399 -O 2>&1; true"
check "the right PIN works again (restores the tries)" "${P11S[@]}" --login --pin "$PIN" -O
check_output "audit trail: the card was recognised" "event=card .*reader=" cat "$AUDIT_FILE"
check_output "audit trail: the wrong PIN, with the tries left" "event=login .*user=user .*result=PinIncorrect tries_left=[0-9]" \
    cat "$AUDIT_FILE"
check_output "audit trail: gnutls-cli's login and signature with key $(slot_id "$EC_KEY")" \
    "event=sign program=gnutls-cli .*key_id=$(slot_id "$EC_KEY") .*cert_sha256=[0-9a-f]{64} .*result=ok" \
    cat "$AUDIT_FILE"
check_output "audit trail: the refused SHA-1 signature is not a card operation (no sign event with mechanism 0x6)" "^0$" \
    bash -c "grep -c 'event=sign .*mechanism=0x6 ' $(printf '%q' "$AUDIT_FILE"); true"
audit_has_no_secret() {
    local data
    data=$(xxd -p -c 256 "$WORK/policy-in.bin" | head -c 16)
    ! sed 's/serial=[^ ]*//' "$AUDIT_FILE" | grep -qE "$PIN|11223399|$data"
}
check_fn "audit trail: no PIN (right or wrong) and no signed data in it" audit_has_no_secret
check_output "audit trail: the file is the user's alone (0600)" "^600$" stat -c %a "$AUDIT_FILE"

# `p11card policy check` (suite-cli.sh builds the command) under the
# strict preset: the policy, and its verdict on the login key.
P11CARD_BIN="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/p11card"
if [ -x "$P11CARD_BIN" ]; then
    check_output "p11card policy check shows the strict preset and its verdict on key $(slot_id "$LOGIN_KEY")" \
        "policy: RSA >= 2048 bits;.*key $(slot_id "$LOGIN_KEY") .*: allowed, except signatures over SHA-1" \
        bash -c "$(printf '%q ' "${STRICT[@]}") $(printf '%q' "$P11CARD_BIN") policy check | tr '\n' ' '"
fi
