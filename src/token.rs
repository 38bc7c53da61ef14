//! Token objects: for every key the card application reported, a private
//! key, its public key and (when the card holds one) its certificate, sharing
//! `CKA_ID` and `CKA_LABEL`, with the attributes consumers read; a read-only
//! data object for an OpenPGP card's signature counter and one for each of
//! a card's own data objects (PKCS#15 DODF); and the session secret keys
//! `C_DeriveKey` makes.

use crate::cert::{parse_certificate, PublicKey};
use crate::mechanism;
use crate::profile::{CardCertificate, CardInfo, DataObjectInfo, KeyInfo};
use cryptoki_sys::*;
use sha1::{Digest, Sha1};
use zeroize::Zeroize;

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
    /// A data object (`CKO_DATA`).
    Data,
    /// A session secret key (`C_DeriveKey`).
    SecretKey,
}

/// `CKA_LABEL` of the data object holding an OpenPGP card's signature
/// counter.
pub const SIGNATURE_COUNTER_LABEL: &str = "Signature counter";

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
    /// Index of the key in the token's key list; for a card's data object
    /// its index in [`CardInfo::data_objects`].
    pub key_index: usize,
    /// Certificate, public or private key.
    pub kind: ObjectKind,
    /// A private object (`CKA_PRIVATE`): visible only after `C_Login`.
    pub private: bool,
    attributes: Vec<(CK_ATTRIBUTE_TYPE, AttrValue)>,
}

impl Drop for Object {
    fn drop(&mut self) {
        // A derived secret's value does not outlive its object.
        self.wipe_secret();
    }
}

impl Object {
    /// Zeroizes, in place, the value of a secret key object (its
    /// attributes' bytes); other objects hold nothing secret.
    pub(crate) fn wipe_secret(&mut self) {
        if self.kind == ObjectKind::SecretKey {
            for (_, value) in &mut self.attributes {
                if let AttrValue::Bytes(bytes) = value {
                    bytes.zeroize();
                }
            }
        }
    }

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
        ObjectKind::Data => 4,
        ObjectKind::SecretKey => 5,
    };
    ((slot + 1) << 16) | ((key_index as CK_ULONG) << 4) | kind_bits
}

/// `CKA_ALLOWED_MECHANISMS`: what the module does with this key.
fn allowed_mechanisms(key: &KeyInfo) -> AttrValue {
    AttrValue::Bytes(
        mechanism::allowed_for(key)
            .into_iter()
            .flat_map(CK_MECHANISM_TYPE::to_ne_bytes)
            .collect(),
    )
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

/// The `CKA_KEY_TYPE` of a key.
pub fn key_type(key: &PublicKey) -> CK_KEY_TYPE {
    match key {
        PublicKey::Rsa { .. } => CKK_RSA,
        PublicKey::Ec { .. } => CKK_EC,
        PublicKey::Ed25519 { .. } => CKK_EC_EDWARDS,
        PublicKey::X25519 { .. } => CKK_EC_MONTGOMERY,
    }
}

fn key_attributes(out: &mut Vec<(CK_ATTRIBUTE_TYPE, AttrValue)>, key: &KeyInfo, derive: bool) {
    out.extend([
        (CKA_KEY_TYPE, ulong(key_type(&key.public_key))),
        (CKA_START_DATE, bytes(&[])),
        (CKA_END_DATE, bytes(&[])),
        (CKA_LOCAL, bool_attr(false)),
        (CKA_KEY_GEN_MECHANISM, ulong(UNAVAILABLE)),
        (CKA_DERIVE, bool_attr(derive)),
        (CKA_ALLOWED_MECHANISMS, allowed_mechanisms(key)),
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
        // PKCS#11 3.0 §2.3: the named curve's OID in CKA_EC_PARAMS (for
        // Ed25519/X25519 the RFC 8410 OIDs); the point as a DER OCTET
        // STRING (for Ed25519/X25519 around the raw 32 bytes).
        other => {
            if let (Some(params), Some(point)) = (other.ec_params(), other.ec_point()) {
                out.extend([
                    (CKA_EC_PARAMS, bytes(params)),
                    (CKA_EC_POINT, AttrValue::Bytes(octet_string(point))),
                ]);
            }
        }
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
    let is_rsa = key.public_key.is_rsa();
    let mut objects = Vec::with_capacity(3);

    let mut private = Vec::new();
    // A key behind the PIN is a private object, as OpenSC shows PIV keys:
    // consumers such as libp11 log in only when the key is private.
    let private_key_is_private = !key.no_pin;
    common_attributes(&mut private, CKO_PRIVATE_KEY, key, private_key_is_private);
    key_attributes(&mut private, key, key.can_derive);
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
    // A key the algorithm policy refuses shows its certificate and public
    // key (so people and tools see why), but no private key to use.
    if key.refusals.key.is_none() {
        objects.push(Object {
            handle: handle_for(slot, key_index, ObjectKind::PrivateKey),
            key_index,
            kind: ObjectKind::PrivateKey,
            private: private_key_is_private,
            attributes: private,
        });
    }

    let mut public = Vec::new();
    common_attributes(&mut public, CKO_PUBLIC_KEY, key, false);
    key_attributes(&mut public, key, false);
    public.extend([
        (CKA_SUBJECT, bytes(&subject)),
        (CKA_VERIFY, bool_attr(key.can_sign)),
        (CKA_VERIFY_RECOVER, bool_attr(false)),
        (
            CKA_ENCRYPT,
            bool_attr(is_rsa && (key.can_decrypt || !key.card_pads)),
        ),
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
        certificate_attributes(
            &mut attributes,
            &cert,
            CK_CERTIFICATE_CATEGORY_TOKEN_USER,
            false,
        );
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

/// The attributes of an X.509 certificate object after the common ones.
fn certificate_attributes(
    attributes: &mut Vec<(CK_ATTRIBUTE_TYPE, AttrValue)>,
    cert: &crate::cert::CertificateInfo,
    category: CK_CERTIFICATE_CATEGORY,
    trusted: bool,
) {
    let check_value = Sha1::digest(&cert.der);
    attributes.extend([
        (CKA_CERTIFICATE_TYPE, ulong(CKC_X_509)),
        (CKA_TRUSTED, bool_attr(trusted)),
        (CKA_CERTIFICATE_CATEGORY, ulong(category)),
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
}

/// The object of a certificate that belongs to no key (a CA's): category
/// authority when it is one, else unspecified.
fn card_certificate_object(handle: CK_OBJECT_HANDLE, card: &CardCertificate) -> Option<Object> {
    let cert = parse_certificate(&card.der).ok()?;
    let mut attributes = vec![
        (CKA_CLASS, ulong(CKO_CERTIFICATE)),
        (CKA_TOKEN, bool_attr(true)),
        (CKA_PRIVATE, bool_attr(false)),
        (CKA_MODIFIABLE, bool_attr(false)),
        (CKA_COPYABLE, bool_attr(false)),
        (CKA_DESTROYABLE, bool_attr(false)),
        (CKA_LABEL, bytes(card.label.as_bytes())),
        (CKA_ID, bytes(&card.id)),
    ];
    let category = if card.authority {
        CK_CERTIFICATE_CATEGORY_AUTHORITY
    } else {
        CK_CERTIFICATE_CATEGORY_UNSPECIFIED
    };
    certificate_attributes(&mut attributes, &cert, category, card.trusted);
    Some(Object {
        handle,
        key_index: usize::MAX,
        kind: ObjectKind::Certificate,
        private: false,
        attributes,
    })
}

/// Builds every object of a token: the keys' objects, then a data object
/// with the signature counter if the card has one, then the card's data
/// objects and the certificates of no key (CA certificates).
pub fn objects_for_card(slot: CK_SLOT_ID, info: &CardInfo) -> Vec<Object> {
    let mut objects: Vec<Object> = info
        .keys
        .iter()
        .enumerate()
        .flat_map(|(index, key)| objects_for_key(slot, index, key))
        .collect();
    if let Some(counter) = info.signature_counter {
        objects.push(signature_counter_object(slot, info.keys.len(), counter));
    }
    for (index, data) in info.data_objects.iter().enumerate() {
        let handle = handle_for(slot, info.keys.len() + 1 + index, ObjectKind::Data);
        objects.push(card_data_object(handle, index, data));
    }
    let first = info.keys.len() + 1 + info.data_objects.len();
    for (index, certificate) in info.certificates.iter().enumerate() {
        let handle = handle_for(slot, first + index, ObjectKind::Certificate);
        objects.extend(card_certificate_object(handle, certificate));
    }
    objects
}

/// A card's data object (`CKO_DATA`, read-only); `CKA_VALUE` once the
/// value was read ([`set_data_value`]).
fn card_data_object(handle: CK_OBJECT_HANDLE, index: usize, data: &DataObjectInfo) -> Object {
    let mut attributes = vec![
        (CKA_CLASS, ulong(CKO_DATA)),
        (CKA_TOKEN, bool_attr(true)),
        (CKA_PRIVATE, bool_attr(data.private)),
        (CKA_MODIFIABLE, bool_attr(false)),
        (CKA_COPYABLE, bool_attr(false)),
        (CKA_DESTROYABLE, bool_attr(false)),
        (CKA_LABEL, bytes(data.label.as_bytes())),
        (CKA_APPLICATION, bytes(data.application.as_bytes())),
        (CKA_OBJECT_ID, bytes(&data.object_id)),
    ];
    if let Some(value) = &data.value {
        attributes.push((CKA_VALUE, bytes(value)));
    }
    Object {
        handle,
        key_index: index,
        kind: ObjectKind::Data,
        private: data.private,
        attributes,
    }
}

/// The index in [`CardInfo::data_objects`] of the card data object behind
/// `handle` whose value has not been read yet.
pub fn pending_data_value(
    objects: &[Object],
    info: &CardInfo,
    handle: CK_OBJECT_HANDLE,
) -> Option<usize> {
    let object = objects
        .iter()
        .find(|o| o.handle == handle && o.kind == ObjectKind::Data)?;
    let data = info.data_objects.get(object.key_index)?;
    (data.value.is_none() && object.attribute(CKA_VALUE).is_none()).then_some(object.key_index)
}

/// Gives the card data object behind `handle` its `CKA_VALUE`.
pub fn set_data_value(objects: &mut [Object], handle: CK_OBJECT_HANDLE, value: &[u8]) {
    if let Some(object) = objects
        .iter_mut()
        .find(|o| o.handle == handle && o.kind == ObjectKind::Data)
    {
        object.attributes.retain(|(kind, _)| *kind != CKA_VALUE);
        object.attributes.push((CKA_VALUE, bytes(value)));
    }
}

/// The read-only data object that shows an OpenPGP card's digital
/// signature counter (DO `93`) as decimal text in `CKA_VALUE`.
fn signature_counter_object(slot: CK_SLOT_ID, index: usize, counter: u32) -> Object {
    let attributes = vec![
        (CKA_CLASS, ulong(CKO_DATA)),
        (CKA_TOKEN, bool_attr(true)),
        (CKA_PRIVATE, bool_attr(false)),
        (CKA_MODIFIABLE, bool_attr(false)),
        (CKA_COPYABLE, bool_attr(false)),
        (CKA_DESTROYABLE, bool_attr(false)),
        (CKA_LABEL, bytes(SIGNATURE_COUNTER_LABEL.as_bytes())),
        (CKA_APPLICATION, bytes(b"OpenPGP card")),
        (CKA_OBJECT_ID, bytes(&[])),
        (CKA_VALUE, bytes(counter.to_string().as_bytes())),
    ];
    Object {
        handle: handle_for(slot, index, ObjectKind::Data),
        key_index: usize::MAX,
        kind: ObjectKind::Data,
        private: false,
        attributes,
    }
}

/// Sets the signature counter object's value (after a signature with the
/// signature key: the card counted one more).
pub fn set_signature_counter(objects: &mut [Object], counter: u32) {
    let label = bytes(SIGNATURE_COUNTER_LABEL.as_bytes());
    for object in objects.iter_mut().filter(|o| o.kind == ObjectKind::Data) {
        if object.attribute(CKA_LABEL) == Some(&label) {
            for (kind, value) in &mut object.attributes {
                if *kind == CKA_VALUE {
                    *value = bytes(counter.to_string().as_bytes());
                }
            }
        }
    }
}

/// What a `C_DeriveKey` template asks of the new secret key.
#[derive(Debug, Clone, Default)]
pub struct SecretKeyTemplate {
    /// `CKA_KEY_TYPE` (default `CKK_GENERIC_SECRET`).
    pub key_type: Option<CK_KEY_TYPE>,
    /// `CKA_VALUE_LEN`: keep this many leading bytes of the secret.
    pub value_len: Option<usize>,
    /// `CKA_LABEL`.
    pub label: Vec<u8>,
    /// `CKA_ID`.
    pub id: Vec<u8>,
    /// `CKA_SENSITIVE` (default false).
    pub sensitive: bool,
    /// `CKA_EXTRACTABLE` (default true).
    pub extractable: bool,
    /// Usage flags the caller set to true (`CKA_ENCRYPT`, `CKA_DECRYPT`, ...).
    pub usages: Vec<CK_ATTRIBUTE_TYPE>,
}

impl SecretKeyTemplate {
    /// Reads a `C_DeriveKey` template. The new key is a session object:
    /// `CKA_TOKEN` true is refused (the token is read-only), as is a class
    /// other than `CKO_SECRET_KEY` or a `CKA_VALUE` (the card makes it).
    /// Attributes a secret key has but the module does not use are
    /// accepted and left out.
    pub fn from_attributes(
        template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
    ) -> crate::Result<SecretKeyTemplate> {
        use crate::Error;
        let as_ulong = |value: &[u8]| -> crate::Result<CK_ULONG> {
            Ok(CK_ULONG::from_ne_bytes(
                value.try_into().map_err(|_| Error::AttributeValueInvalid)?,
            ))
        };
        let as_bool = |value: &[u8]| -> crate::Result<bool> {
            match value {
                [CK_FALSE] => Ok(false),
                [_] => Ok(true),
                _ => Err(Error::AttributeValueInvalid),
            }
        };
        let mut out = SecretKeyTemplate {
            extractable: true,
            ..SecretKeyTemplate::default()
        };
        for (kind, value) in template {
            let refused = match *kind {
                CKA_CLASS => as_ulong(value)? != CKO_SECRET_KEY,
                CKA_TOKEN => as_bool(value)?,
                CKA_VALUE => true,
                _ => false,
            };
            if refused {
                return Err(Error::TemplateInconsistent);
            }
            match *kind {
                CKA_KEY_TYPE => out.key_type = Some(as_ulong(value)?),
                CKA_VALUE_LEN => {
                    let len = as_ulong(value)?;
                    out.value_len =
                        Some(usize::try_from(len).map_err(|_| Error::AttributeValueInvalid)?);
                }
                CKA_LABEL => out.label = value.clone(),
                CKA_ID => out.id = value.clone(),
                CKA_SENSITIVE => out.sensitive = as_bool(value)?,
                CKA_EXTRACTABLE => out.extractable = as_bool(value)?,
                usage if SECRET_KEY_USAGES.contains(&usage) && as_bool(value)? => {
                    out.usages.push(usage)
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

/// The boolean usage attributes a derived key may carry.
pub const SECRET_KEY_USAGES: [CK_ATTRIBUTE_TYPE; 7] = [
    CKA_ENCRYPT,
    CKA_DECRYPT,
    CKA_SIGN,
    CKA_VERIFY,
    CKA_WRAP,
    CKA_UNWRAP,
    CKA_DERIVE,
];

/// A session secret key made by `C_DeriveKey` from `secret`.
pub fn secret_key_object(
    handle: CK_OBJECT_HANDLE,
    template: &SecretKeyTemplate,
    secret: &[u8],
) -> Object {
    let value = match template.value_len {
        Some(len) => &secret[..len.min(secret.len())],
        None => secret,
    };
    let readable = !template.sensitive && template.extractable;
    let mut attributes = vec![
        (CKA_CLASS, ulong(CKO_SECRET_KEY)),
        (CKA_TOKEN, bool_attr(false)),
        (CKA_PRIVATE, bool_attr(false)),
        (CKA_MODIFIABLE, bool_attr(false)),
        (CKA_COPYABLE, bool_attr(false)),
        (CKA_DESTROYABLE, bool_attr(true)),
        (CKA_LABEL, bytes(&template.label)),
        (CKA_ID, bytes(&template.id)),
        (
            CKA_KEY_TYPE,
            ulong(template.key_type.unwrap_or(CKK_GENERIC_SECRET)),
        ),
        (CKA_START_DATE, bytes(&[])),
        (CKA_END_DATE, bytes(&[])),
        (CKA_LOCAL, bool_attr(false)),
        (CKA_KEY_GEN_MECHANISM, ulong(CKM_ECDH1_DERIVE)),
        (CKA_SENSITIVE, bool_attr(template.sensitive)),
        (CKA_EXTRACTABLE, bool_attr(template.extractable)),
        (CKA_ALWAYS_SENSITIVE, bool_attr(false)),
        (CKA_NEVER_EXTRACTABLE, bool_attr(false)),
        (CKA_TRUSTED, bool_attr(false)),
        (CKA_WRAP_WITH_TRUSTED, bool_attr(false)),
        (CKA_VALUE_LEN, ulong(value.len() as CK_ULONG)),
        (
            CKA_VALUE,
            if readable {
                bytes(value)
            } else {
                AttrValue::Sensitive
            },
        ),
    ];
    attributes.extend(
        SECRET_KEY_USAGES
            .iter()
            .map(|&usage| (usage, bool_attr(template.usages.contains(&usage)))),
    );
    Object {
        handle,
        key_index: usize::MAX,
        kind: ObjectKind::SecretKey,
        private: false,
        attributes,
    }
}
