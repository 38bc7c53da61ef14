"""PyKCS11 (Debian's python3-pykcs11) as scripts use it: slot 0 straight
after loading the module, without getSlotList (issue 12). Prints one line
per check, "ok NAME" or "FAIL NAME: why"; exits 1 if any failed.

Usage: pykcs11-slot0.py MODULE PIN PROVISIONED_DIR
"""
import hashlib
import sys

import PyKCS11
from PyKCS11.LowLevel import (CKA_CLASS, CKA_ID, CKF_SERIAL_SESSION, CKM_ECDSA,
                              CKM_ECDSA_SHA256, CKM_SHA256_RSA_PKCS, CKO_PRIVATE_KEY)
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, utils

module, pin, prov = sys.argv[1:4]
failed = 0


def check(name, ok, why=""):
    global failed
    print(("ok   %s" % name) if ok else ("FAIL %s: %s" % (name, why)))
    failed += 0 if ok else 1


def public(slot_hex):
    with open("%s/pub%s.pem" % (prov, slot_hex), "rb") as f:
        return serialization.load_pem_public_key(f.read())


def ecdsa_ok(key, signature, fitted):
    half = len(signature) // 2
    r = int.from_bytes(bytes(signature[:half]), "big")
    s = int.from_bytes(bytes(signature[half:]), "big")
    try:
        key.verify(utils.encode_dss_signature(r, s), fitted,
                   ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        return True
    except Exception:
        return False


lib = PyKCS11.PyKCS11Lib()
lib.load(module)
# The first calls name slot 0 without getSlotList.
try:
    mechanisms = lib.getMechanismList(0)
    check("getMechanismList(0) before getSlotList", "CKM_ECDSA" in mechanisms, mechanisms)
except PyKCS11.PyKCS11Error as e:
    check("getMechanismList(0) before getSlotList", False, e)
try:
    session = lib.openSession(0, CKF_SERIAL_SESSION)
    check("openSession(0)", True)
except PyKCS11.PyKCS11Error as e:
    check("openSession(0)", False, e)
    sys.exit(1)
session.login(pin)


def private(key_id):
    return session.findObjects([(CKA_CLASS, CKO_PRIVATE_KEY), (CKA_ID, [key_id])])[0]


data = b"signed by a PyKCS11 script"
signature = bytes(session.sign(private(1), data, PyKCS11.Mechanism(CKM_SHA256_RSA_PKCS)))
try:
    public("9a").verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    check("login and sign with 9A (SHA256-RSA-PKCS) verifies", True)
except Exception as e:
    check("login and sign with 9A (SHA256-RSA-PKCS) verifies", False, e)

# 9C wants the context login, which this script does not do: refused, and
# the refusal ends the operation, so 9E signs next in the same session.
try:
    session.sign(private(2), data, PyKCS11.Mechanism(CKM_ECDSA_SHA256))
    check("9C without the context login is refused", False, "it signed")
except PyKCS11.PyKCS11Error as e:
    check("9C without the context login is refused", e.value == PyKCS11.CKR_USER_NOT_LOGGED_IN, e)
try:
    signature = session.sign(private(4), data, PyKCS11.Mechanism(CKM_ECDSA_SHA256))
    check("then 9E signs (no CKR_OPERATION_ACTIVE)",
          ecdsa_ok(public("9e"), signature, hashlib.sha256(data).digest()))
except PyKCS11.PyKCS11Error as e:
    check("then 9E signs (no CKR_OPERATION_ACTIVE)", False, e)

# CKM_ECDSA with hashes shorter and longer than the P-256 order: the module
# fits them (the card takes exactly 32 bytes).
for n in (20, 48, 64):
    digest = hashlib.sha512(data).digest()[:n]
    fitted = digest[:32] if n >= 32 else bytes(32 - n) + digest
    try:
        signature = session.sign(private(4), digest, PyKCS11.Mechanism(CKM_ECDSA))
        check("CKM_ECDSA over a %d-byte hash verifies" % n, ecdsa_ok(public("9e"), signature, fitted))
    except PyKCS11.PyKCS11Error as e:
        check("CKM_ECDSA over a %d-byte hash verifies" % n, False, e)

# The second vpcd reader is empty.
try:
    lib.getMechanismList(1)
    check("getMechanismList on the empty reader is CKR_TOKEN_NOT_PRESENT", False, "a list")
except PyKCS11.PyKCS11Error as e:
    check("getMechanismList on the empty reader is CKR_TOKEN_NOT_PRESENT",
          e.value == PyKCS11.CKR_TOKEN_NOT_PRESENT, e)
session.logout()
session.closeSession()
sys.exit(1 if failed else 0)
