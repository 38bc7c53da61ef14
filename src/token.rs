//! Token objects: for every key the card application reported, a private
//! key, its public key and (when the card holds one) its certificate, sharing
//! `CKA_ID` and `CKA_LABEL`, with the attributes consumers read.

use crate::cert::{parse_certificate, PublicKey};
use crate::mechanism;
use crate::profile::KeyInfo;
use cryptoki_sys::*;
use sha1::{Digest, Sha1};

/// `CK_UNAVAILABLE_INFORMATION`.
pub const UNAVAILABLE: CK_ULONG = CK_ULONG::MAX;

/// What kind of object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// An X.509 certificate.
    Certificate,
    /// A public key.
    PublicKey,
    /// A private key (on the card).
    PrivateKey,
}

/// An attribute's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrValue {
    /// Readable bytes (in the C layout: `CK_ULONG`s native-endian).
    Bytes(Vec<u8>),
    /// Exists but cannot be revealed.
    Sensitive,
}

/// One token object.
#[derive(Debug, Clone)]
pub struct Object {
    /// The object's handle.
    pub handle: CK_OBJECT_HANDLE,
    /// Index of the key in the token's key list.
    pub key_index: usize,
    /// Certificate, public or private key.
    pub kind: ObjectKind,
    /// A private object (`CKA_PRIVATE`): visible only after `C_Login`.
    pub private: bool,
    attributes: Vec<(CK_ATTRIBUTE_TYPE, AttrValue)>,
}

impl Object {
    /// The attribute's value, or `None` if the object has no such attribute.
    pub fn attribute(&self, kind: CK_ATTRIBUTE_TYPE) -> Option<&AttrValue> {
        self.attributes
            .iter()
            .find(|(attribute, _)| *attribute == kind)
            .map(|(_, value)| value)
    }

    /// Whether every `(type, value)` pair of `template` matches this object.
    pub fn matches(&self, template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)]) -> bool {
        template.iter().all(|(kind, wanted)| {
            matches!(self.attribute(*kind), Some(AttrValue::Bytes(value)) if value == wanted)
        })
    }
}

fn ulong(value: CK_ULONG) -> AttrValue {
    AttrValue::Bytes(value.to_ne_bytes().to_vec())
}

fn bool_attr(value: bool) -> AttrValue {
    AttrValue::Bytes(vec![if value { CK_TRUE } else { CK_FALSE }])
}

fn bytes(value: &[u8]) -> AttrValue {
    AttrValue::Bytes(value.to_vec())
}

/// DER OCTET STRING around `content` (for `CKA_EC_POINT`).
fn octet_string(content: &[u8]) -> Vec<u8> {
    crate::iso7816::tlv::encode(0x04, content)
}

/// The object handle of `kind` for key `key_index` in slot `slot`; stable
/// for a card's life in the slot, never 0.
pub fn handle_for(slot: CK_SLOT_ID, key_index: usize, kind: ObjectKind) -> CK_OBJECT_HANDLE {
    let kind_bits = match kind {
        ObjectKind::Certificate => 1,
        ObjectKind::PublicKey => 2,
        ObjectKind::PrivateKey => 3,
    };
    ((slot + 1) << 16) | ((key_index as CK_ULONG) << 4) | kind_bits
}

/// `CKA_ALLOWED_MECHANISMS`: the key-family mechanisms the module offers.
fn allowed_mechanisms(key: &PublicKey) -> AttrValue {
    let list: Vec<u8> = mechanism::supported()
        .into_iter()
        .filter(|(mech, info)| {
            info.flags & CKF_DIGEST == 0
                && match key {
                    PublicKey::Rsa { .. } => mechanism::is_rsa_mechanism(*mech),
                    PublicKey::Ec { .. } => !mechanism::is_rsa_mechanism(*mech),
                }
        })
        .flat_map(|(mech, _)| mech.to_ne_bytes())
        .collect();
    AttrValue::Bytes(list)
}

fn common_attributes(
    out: &mut Vec<(CK_ATTRIBUTE_TYPE, AttrValue)>,
    class: CK_OBJECT_CLASS,
    key: &KeyInfo,
    private: bool,
) {
    out.extend([
        (CKA_CLASS, ulong(class)),
        (CKA_TOKEN, bool_attr(true)),
        (CKA_PRIVATE, bool_attr(private)),
        (CKA_MODIFIABLE, bool_attr(false)),
        (CKA_COPYABLE, bool_attr(false)),
        (CKA_DESTROYABLE, bool_attr(false)),
        (CKA_LABEL, bytes(key.label.as_bytes())),
        (CKA_ID, bytes(&key.id)),
    ]);
}

fn key_attributes(out: &mut Vec<(CK_ATTRIBUTE_TYPE, AttrValue)>, key: &KeyInfo) {
    let key_type = match key.public_key {
        PublicKey::Rsa { .. } => CKK_RSA,
        PublicKey::Ec { .. } => CKK_EC,
    };
    out.extend([
        (CKA_KEY_TYPE, ulong(key_type)),
        (CKA_START_DATE, bytes(&[])),
        (CKA_END_DATE, bytes(&[])),
        (CKA_LOCAL, bool_attr(false)),
        (CKA_KEY_GEN_MECHANISM, ulong(UNAVAILABLE)),
        (CKA_DERIVE, bool_attr(false)),
        (CKA_ALLOWED_MECHANISMS, allowed_mechanisms(&key.public_key)),
    ]);
    match &key.public_key {
        PublicKey::Rsa {
            modulus,
            public_exponent,
        } => out.extend([
            (CKA_MODULUS, bytes(modulus)),
            (CKA_PUBLIC_EXPONENT, bytes(public_exponent)),
            (CKA_MODULUS_BITS, ulong(key.public_key.bits() as CK_ULONG)),
        ]),
        PublicKey::Ec { curve, point } => out.extend([
            (CKA_EC_PARAMS, bytes(curve.params_der())),
            (CKA_EC_POINT, AttrValue::Bytes(octet_string(point))),
        ]),
    }
}

/// Builds the objects of one key.
pub fn objects_for_key(slot: CK_SLOT_ID, key_index: usize, key: &KeyInfo) -> Vec<Object> {
    let certificate = key
        .certificate
        .as_deref()
        .and_then(|der| parse_certificate(der).ok());
    let subject = certificate
        .as_ref()
        .map(|c| c.subject.clone())
        .unwrap_or_default();
    let is_rsa = matches!(key.public_key, PublicKey::Rsa { .. });
    let mut objects = Vec::with_capacity(3);

    let mut private = Vec::new();
    // A key behind the PIN is a private object, as OpenSC shows PIV keys:
    // consumers such as libp11 log in only when the key is private.
    let private_key_is_private = !key.no_pin;
    common_attributes(&mut private, CKO_PRIVATE_KEY, key, private_key_is_private);
    key_attributes(&mut private, key);
    private.extend([
        (CKA_SUBJECT, bytes(&subject)),
        (CKA_SENSITIVE, bool_attr(true)),
        (CKA_ALWAYS_SENSITIVE, bool_attr(true)),
        (CKA_EXTRACTABLE, bool_attr(false)),
        (CKA_NEVER_EXTRACTABLE, bool_attr(true)),
        (CKA_SIGN, bool_attr(key.can_sign)),
        (CKA_SIGN_RECOVER, bool_attr(false)),
        (CKA_DECRYPT, bool_attr(key.can_decrypt)),
        (CKA_UNWRAP, bool_attr(false)),
        (CKA_WRAP_WITH_TRUSTED, bool_attr(false)),
        (CKA_ALWAYS_AUTHENTICATE, bool_attr(key.always_authenticate)),
        (CKA_VALUE, AttrValue::Sensitive),
    ]);
    if is_rsa {
        for secret in [
            CKA_PRIVATE_EXPONENT,
            CKA_PRIME_1,
            CKA_PRIME_2,
            CKA_EXPONENT_1,
            CKA_EXPONENT_2,
            CKA_COEFFICIENT,
        ] {
            private.push((secret, AttrValue::Sensitive));
        }
    }
    objects.push(Object {
        handle: handle_for(slot, key_index, ObjectKind::PrivateKey),
        key_index,
        kind: ObjectKind::PrivateKey,
        private: private_key_is_private,
        attributes: private,
    });

    let mut public = Vec::new();
    common_attributes(&mut public, CKO_PUBLIC_KEY, key, false);
    key_attributes(&mut public, key);
    public.extend([
        (CKA_SUBJECT, bytes(&subject)),
        (CKA_VERIFY, bool_attr(true)),
        (CKA_VERIFY_RECOVER, bool_attr(false)),
        (CKA_ENCRYPT, bool_attr(is_rsa)),
        (CKA_WRAP, bool_attr(false)),
        (CKA_TRUSTED, bool_attr(false)),
    ]);
    objects.push(Object {
        handle: handle_for(slot, key_index, ObjectKind::PublicKey),
        key_index,
        kind: ObjectKind::PublicKey,
        private: false,
        attributes: public,
    });

    if let Some(cert) = certificate {
        let mut attributes = Vec::new();
        common_attributes(&mut attributes, CKO_CERTIFICATE, key, false);
        let check_value = Sha1::digest(&cert.der);
        attributes.extend([
            (CKA_CERTIFICATE_TYPE, ulong(CKC_X_509)),
            (CKA_TRUSTED, bool_attr(false)),
            (
                CKA_CERTIFICATE_CATEGORY,
                ulong(CK_CERTIFICATE_CATEGORY_TOKEN_USER),
            ),
            (CKA_CHECK_VALUE, bytes(&check_value[..3])),
            (CKA_START_DATE, bytes(&[])),
            (CKA_END_DATE, bytes(&[])),
            (CKA_SUBJECT, bytes(&cert.subject)),
            (CKA_ISSUER, bytes(&cert.issuer)),
            (CKA_SERIAL_NUMBER, bytes(&cert.serial_number)),
            (CKA_VALUE, bytes(&cert.der)),
            (CKA_URL, bytes(&[])),
            (CKA_HASH_OF_SUBJECT_PUBLIC_KEY, bytes(&[])),
            (CKA_HASH_OF_ISSUER_PUBLIC_KEY, bytes(&[])),
            (CKA_JAVA_MIDP_SECURITY_DOMAIN, ulong(0)),
            (CKA_NAME_HASH_ALGORITHM, ulong(CKM_SHA_1)),
        ]);
        objects.push(Object {
            handle: handle_for(slot, key_index, ObjectKind::Certificate),
            key_index,
            kind: ObjectKind::Certificate,
            private: false,
            attributes,
        });
    }
    objects
}
