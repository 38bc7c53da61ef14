# pam_pkcs11 (Debian libpam-pkcs11) driven by pamtester: a test PAM service
# authenticates the current user with the card's $LOGIN_KEY certificate and key.
# card-families: piv pkcs15
# (sourced by run.sh: MODULE, PROV, WORK, PIN are set)

PAM_SERVICE=p11card-realstack-test
PAM_MODULE_SO=/lib/x86_64-linux-gnu/security/pam_pkcs11.so
if [ ! -f "$PAM_MODULE_SO" ] || ! command -v pamtester >/dev/null; then
    echo "  (installing libpam-pkcs11 pamtester)"
    timeout 600 env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends libpam-pkcs11 pamtester \
        >"$WORK/pam-apt.log" 2>&1 || tail -5 "$WORK/pam-apt.log"
fi
PAMDIR="$WORK/pam"
rm -rf -- "$PAMDIR"
mkdir -p "$PAMDIR/cacerts" "$PAMDIR/crls"
PAM_USER="$(id -un)"

# CA directory: the card's CA and its OpenSSL hash link.
cp "$PROV/ca.pem" "$PAMDIR/cacerts/ca.pem" || true
if command -v pkcs11_make_hash_link >/dev/null; then
    (cd "$PAMDIR/cacerts" && timeout "$T" pkcs11_make_hash_link >/dev/null 2>&1) || true
fi
PAM_CA_HASH="$(timeout "$T" openssl x509 -hash -noout -in "$PROV/ca.pem" || true)"
[ -e "$PAMDIR/cacerts/$PAM_CA_HASH.0" ] || ln -s ca.pem "$PAMDIR/cacerts/$PAM_CA_HASH.0" || true
check_fn "CA directory has the hash link $PAM_CA_HASH.0" test -r "$PAMDIR/cacerts/$PAM_CA_HASH.0"

# The 9A certificate's CN maps to the test user; nothing else maps.
printf '%s -> %s\n' "$(cert_cn "$LOGIN_KEY")" "$PAM_USER" >"$PAMDIR/cn_map"
cat >"$PAMDIR/pam_pkcs11.conf" <<EOF
pam_pkcs11 {
  nullok = false;
  debug = false;
  use_first_pass = false;
  try_first_pass = false;
  use_authtok = false;
  card_only = false;
  wait_for_card = false;
  use_pkcs11_module = p11card;

  pkcs11_module p11card {
    module = $MODULE;
    description = "p11card PKCS#11 module";
    slot_num = 0;
    ca_dir = $PAMDIR/cacerts;
    crl_dir = $PAMDIR/crls;
    support_threads = false;
    cert_policy = ca,signature;
    token_type = "Smart card";
  }

  use_mappers = cn;
  mapper cn {
    debug = false;
    module = internal;
    ignorecase = false;
    mapfile = file://$PAMDIR/cn_map;
  }
}
EOF
PAM_FILE="/etc/pam.d/$PAM_SERVICE"
on_exit rm -f -- "$PAM_FILE"
printf 'auth required pam_pkcs11.so config_file=%s\n' "$PAMDIR/pam_pkcs11.conf" >"$PAM_FILE" || true

pam_auth() { # pin: pamtester reads the PIN from stdin
    printf '%s\n' "$1" | timeout "$T" pamtester -v "$PAM_SERVICE" "$PAM_USER" authenticate 2>&1
}
pam_auth_ok() {
    local out
    out=$(pam_auth "$PIN") || { printf '%s\n' "$out"; return 1; }
    printf '%s\n' "$out"
    # pam_pkcs11 found the token ("Welcome <token label>!"), logged in,
    # validated the 9A certificate against the CA, mapped it to the user
    # and checked a signature made by the card's key.
    grep -q "Welcome .*!" <<<"$out" && grep -q "Checking signature" <<<"$out" &&
        grep -q "successfully authenticated" <<<"$out"
}
check_fn "pamtester: pam_pkcs11 authenticates $PAM_USER with the card's $LOGIN_KEY certificate and the PIN" pam_auth_ok

# A wrong PIN is refused (pamtester exits non-zero, no crash of pam_pkcs11).
pam_wrong_pin() {
    local out rc=0
    out=$(pam_auth 654321) || rc=$?
    printf '%s\n(exit %s)\n' "$out" "$rc"
    [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && { [ "$rc" -lt 128 ] || [ "$rc" -gt 192 ]; } &&
        ! grep -q "successfully authenticated" <<<"$out" && grep -q "Wrong smartcard PIN" <<<"$out"
}
check_fn "pamtester: a wrong PIN is refused (Wrong smartcard PIN)" pam_wrong_pin
# The right PIN again (and the card's retry counter is full again).
check_fn "pamtester: the right PIN works again afterwards" pam_auth_ok

# The mapping matters: a user the certificate does not map to is refused.
pam_other_user() {
    local out rc=0
    out=$(printf '%s\n' "$PIN" | timeout "$T" pamtester -v "$PAM_SERVICE" nobody authenticate 2>&1) || rc=$?
    printf '%s\n(exit %s)\n' "$out" "$rc"
    [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && ! grep -q "successfully authenticated" <<<"$out"
}
check_fn "pamtester: user nobody (not mapped from the certificate) is refused" pam_other_user
