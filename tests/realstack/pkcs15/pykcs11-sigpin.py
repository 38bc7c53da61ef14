"""PyKCS11 (Debian's python3-pykcs11) on the simulated MyEID card with p11card:
one token for the card; the non-repudiation key 03 behind the signature PIN
(auth ID 02) is CKA_ALWAYS_AUTHENTICATE and signs after C_Login(USER, user
PIN) + C_SignInit + C_Login(CONTEXT_SPECIFIC, signature PIN); refused
without the context login; a wrong signature PIN costs one try of that PIN
and none of the user PIN (the card's answer to VERIFY without data, read
with opensc-tool); the DODF's data objects (the private one after login);
the CA's certificate as an authority certificate.
Prints one line per check, "ok NAME" or "FAIL NAME: why"; exits 1 if any
failed.

Usage: pykcs11-sigpin.py MODULE USER_PIN SIGNATURE_PIN PROVISIONED_DIR READER
"""
import hashlib
import subprocess
import sys

import PyKCS11
from PyKCS11.LowLevel import (CKA_ALWAYS_AUTHENTICATE, CKA_APPLICATION,
                              CKA_CERTIFICATE_CATEGORY, CKA_CLASS, CKA_ID, CKA_LABEL,
                              CKA_PRIVATE, CKA_TRUSTED, CKA_VALUE, CKM_ECDSA, CKO_CERTIFICATE,
                              CKO_DATA, CKO_PRIVATE_KEY, CKU_CONTEXT_SPECIFIC)
from PyKCS11 import ckbytelist
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

module, user_pin, signature_pin, prov, reader = sys.argv[1:6]
failed = 0


def check(name, ok, why=""):
    global failed
    print(("ok   %s" % name) if ok else ("FAIL %s: %s" % (name, why)))
    failed += 0 if ok else 1


def tries(reference):
    """The card's answer to VERIFY without data for PIN `reference`."""
    out = subprocess.run(["timeout", "20", "opensc-tool", "-r", reader, "-s",
                          "00:20:00:%02X" % reference],
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "SW1=" in line:
            sw1 = line.split("SW1=0x")[1][:2]
            sw2 = line.split("SW2=0x")[1][:2]
            return (sw1 + sw2).upper()
    return "?"


def ecdsa_ok(signature, digest):
    with open("%s/pub03.pem" % prov, "rb") as f:
        key = serialization.load_pem_public_key(f.read())
    half = len(signature) // 2
    r = int.from_bytes(bytes(signature[:half]), "big")
    s = int.from_bytes(bytes(signature[half:]), "big")
    try:
        key.verify(utils.encode_dss_signature(r, s), digest,
                   ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        return True
    except Exception:
        return False


lib = PyKCS11.PyKCS11Lib()
lib.load(module)
slots = lib.getSlotList(tokenPresent=True)
labels = [lib.getTokenInfo(s).label.strip() for s in slots]
check("one token for the card (not one per PIN)", labels == ["p11card MyEID"], labels)
session = lib.openSession(slots[0])

data_objects = session.findObjects([(CKA_CLASS, CKO_DATA)])
check("before login: one data object (the public one)", len(data_objects) == 1, len(data_objects))
session.login(user_pin)


def key(key_id):
    return session.findObjects([(CKA_CLASS, CKO_PRIVATE_KEY), (CKA_ID, [key_id])])[0]


always = [session.getAttributeValue(key(i), [CKA_ALWAYS_AUTHENTICATE])[0] for i in (1, 2, 3)]
check("key 03 is always-authenticate, 01 and 02 are not", always == [False, False, True], always)

digest = hashlib.sha256(b"signed with the signature PIN").digest()
mechanism = PyKCS11.Mechanism(CKM_ECDSA).to_native()


def sign_with_context_login(pin):
    """C_SignInit, C_Login(CONTEXT_SPECIFIC, pin), C_Sign: the signature, or the CKR."""
    rv = session.lib.C_SignInit(session.session, mechanism, key(3))
    if rv != PyKCS11.CKR_OK:
        return rv
    rv = session.lib.C_Login(session.session, CKU_CONTEXT_SPECIFIC, ckbytelist(pin))
    if rv != PyKCS11.CKR_OK:
        return rv
    signature = ckbytelist()
    for _ in range(2):
        rv = session.lib.C_Sign(session.session, ckbytelist(digest), signature)
        if rv != PyKCS11.CKR_OK:
            return rv
    return signature


result = sign_with_context_login(signature_pin)
check("key 03 signs after C_SignInit + C_Login(CONTEXT_SPECIFIC, signature PIN), verifies",
      not isinstance(result, int) and ecdsa_ok(result, digest), result)
try:
    session.sign(key(3), digest, PyKCS11.Mechanism(CKM_ECDSA))
    check("key 03 without the context login is refused", False, "it signed")
except PyKCS11.PyKCS11Error as e:
    check("key 03 without the context login is refused (CKR_USER_NOT_LOGGED_IN)",
          e.value == PyKCS11.CKR_USER_NOT_LOGGED_IN, e)

before = (tries(1), tries(2))
result = sign_with_context_login("111111")
after = (tries(1), tries(2))
check("a wrong signature PIN is CKR_PIN_INCORRECT", result == PyKCS11.CKR_PIN_INCORRECT, result)
check("it costs one try of the signature PIN and none of the user PIN",
      before[1] == "63C3" and after == (before[0], "63C2"), (before, after))
# The session's signing operation is still active (C_Login failed): end
# it with the right signature PIN, which restores the tries.
signature = ckbytelist()
rv = session.lib.C_Login(session.session, CKU_CONTEXT_SPECIFIC, ckbytelist(signature_pin))
for _ in range(2):
    if rv == PyKCS11.CKR_OK:
        rv = session.lib.C_Sign(session.session, ckbytelist(digest), signature)
check("the right signature PIN then signs and restores its tries",
      rv == PyKCS11.CKR_OK and ecdsa_ok(signature, digest) and tries(2) == "63C3", (rv, tries(2)))

values = {}
for handle in session.findObjects([(CKA_CLASS, CKO_DATA)]):
    label, application, private, value = session.getAttributeValue(
        handle, [CKA_LABEL, CKA_APPLICATION, CKA_PRIVATE, CKA_VALUE], allAsBinary=True)
    values[bytes(label).decode()] = (bytes(application).decode(), bool(private[0]), bytes(value))
check("after login: the public and the private data object with their values",
      values == {"p11card public data": ("p11card test", False, b"p11card public data object\n"),
                 "p11card private data": ("p11card test", True, b"p11card private data object\n")},
      values)
ca = session.findObjects([(CKA_CLASS, CKO_CERTIFICATE), (CKA_ID, [0xCA])])
category = trusted = None
if len(ca) == 1:
    category, trusted = session.getAttributeValue(ca[0], [CKA_CERTIFICATE_CATEGORY, CKA_TRUSTED])
    # PyKCS11 gives an attribute it does not know as bytes (a CK_ULONG).
    if not isinstance(category, int):
        category = int.from_bytes(bytes(category), sys.byteorder)
check("the CA's certificate (iD CA) is category authority (2), not trusted",
      (category, trusted) == (2, False), (len(ca), category, trusted))
session.logout()
session.closeSession()
sys.exit(1 if failed else 0)
