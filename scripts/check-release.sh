#!/usr/bin/env bash
# Checks a built module: it exports the PKCS#11 entry points, and OpenSC's
# pkcs11-tool loads it and lists info and slots with no reader attached.
set -euo pipefail
module="${1:-target/release/libp11card_pkcs11.so}"

symbols=$(nm -D --defined-only "$module")
for symbol in C_GetFunctionList C_GetInterfaceList C_GetInterface C_Initialize C_Sign; do
    grep -q " T $symbol\$" <<<"$symbols" || { echo "check-release: $symbol is not exported" >&2; exit 1; }
done
echo "check-release: exports C_GetFunctionList, C_GetInterfaceList, C_GetInterface ($(grep -c ' T C_' <<<"$symbols") C_* symbols)"

# No reader: point libpcsclite at a socket that does not exist.
for action in -I -L; do
    out=$(PCSCLITE_CSOCK_NAME=/nonexistent/pcscd.comm timeout 30 pkcs11-tool --module "$module" "$action" 2>&1) || true
    # pkcs11-tool always ends with "No slots." (exit 1) when there is no
    # slot, whatever the module; anything else means the module failed.
    if grep -qiE 'error|CKR_|failed|abort' <<<"$out"; then
        echo "check-release: pkcs11-tool $action failed with no reader:" >&2
        echo "$out" >&2
        exit 1
    fi
    echo "check-release: pkcs11-tool $action with no reader: ok"
done
grep -q "Manufacturer *p11card" <<<"$(PCSCLITE_CSOCK_NAME=/nonexistent/pcscd.comm timeout 30 pkcs11-tool --module "$module" -I 2>&1 || true)" \
    || { echo "check-release: pkcs11-tool -I did not show the module's info" >&2; exit 1; }
