# PyKCS11 (Debian's python3-pykcs11, for /usr/bin/python3) as a script uses
# it: slot 0 right after loading the module, without getSlotList; login,
# RSA and ECDSA signatures checked with the provisioned public keys; 9C
# refused without the context login and 9E signing next in the same
# session; CKM_ECDSA over hashes of other lengths; the empty second reader.
# (sourced by run.sh: MODULE, PROV, WORK, PIN are set)

PYKCS11_SCRIPT="$(dirname "${BASH_SOURCE[0]}")/pykcs11-slot0.py"
if ! /usr/bin/python3 -c 'import PyKCS11' 2>/dev/null; then
    echo "  (installing python3-pykcs11)"
    timeout 600 env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-pykcs11 \
        >"$WORK/pykcs11-apt.log" 2>&1 || tail -5 "$WORK/pykcs11-apt.log"
fi
PYKCS11_OUT="$(timeout 120 /usr/bin/python3 "$PYKCS11_SCRIPT" "$MODULE" "$PIN" "$PROV" 2>&1)" && rc=0 || rc=$?
while IFS= read -r line; do
    case "$line" in
        "ok   "*) pass "PyKCS11: ${line#ok   }" ;;
        "FAIL "*) fail "PyKCS11: ${line#FAIL }" ;;
        *) printf '        %s\n' "$line" ;;
    esac
done <<<"$PYKCS11_OUT"
check_fn "PyKCS11 script ran to its end (exit $rc)" test "$rc" -eq 0
