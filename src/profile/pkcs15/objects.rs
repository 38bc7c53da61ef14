//! The token's objects from the directory files: each private key with its
//! public key and certificate (from the CDF, else the PuKDF), and the
//! DODF's data objects.

use super::*;

impl Pkcs15App {
    /// The public key and certificate of `private`: from its certificate
    /// in the CDF, else (no certificate, or one that cannot be read) from
    /// the PuKDF (read, with `public_paths`, the first time a key needs
    /// it). `None`: the key cannot be shown.
    pub(super) fn public_key_of(
        &self,
        card: &mut Transaction,
        private: &p15::PrivateKey,
        certificates: &[p15::Certificate],
        public_paths: &[&Path],
        public_keys: &mut Option<Vec<p15::PublicKey>>,
    ) -> Result<Option<KeyMaterial>, AppError> {
        if let Some(certificate) = certificates
            .iter()
            .find(|c| c.id == private.key.id && !c.authority)
        {
            let der = match &certificate.value {
                p15::ObjectValue::Path(path) => self.reader().read(card, path, Extent::Element)?,
                p15::ObjectValue::Direct(der) => Some(der.clone()),
                p15::ObjectValue::Unsupported => None,
            };
            match der.as_deref().map(parse_certificate) {
                Some(Ok(parsed)) => return Ok(Some((parsed.public_key, der))),
                _ => log::warn!("PKCS#15 certificate not usable: the key's public key only"),
            }
        }
        if public_keys.is_none() {
            *public_keys = Some(self.read_directory(card, public_paths, p15::parse_pukdf)?);
        }
        let Some(public) = public_keys
            .iter()
            .flatten()
            .find(|k| k.key.id == private.key.id)
        else {
            log::warn!("PKCS#15 key without a certificate or public key: not listed");
            return Ok(None);
        };
        let data = match &public.value {
            p15::ObjectValue::Path(path) => self.reader().read(card, path, Extent::Element)?,
            p15::ObjectValue::Direct(data) => Some(data.clone()),
            p15::ObjectValue::Unsupported => None,
        };
        let key = data.as_deref().and_then(public_key_from_der);
        if key.is_none() {
            log::warn!("PKCS#15 public key not usable: key not listed");
        }
        Ok(key.map(|key| (key, None)))
    }

    /// The keys of the PrKDF whose public key the card gives (in a
    /// certificate, else in the PuKDF at `public_paths`); `user` is the
    /// user PIN's `authId`.
    pub(super) fn keys(
        &self,
        card: &mut Transaction,
        private_keys: Vec<p15::PrivateKey>,
        certificates: &[p15::Certificate],
        public_paths: &[&Path],
        pins: &[p15::Pin],
        user: Option<&p15::Identifier>,
    ) -> Result<Vec<KeyInfo>, AppError> {
        let mut public_keys = None;
        let mut keys = Vec::new();
        let mut key_files = Vec::new();
        let mut key_pins = Vec::new();
        for (index, private) in private_keys.into_iter().enumerate() {
            let Some(reference) = private
                .key
                .key_reference
                .and_then(|r| u8::try_from(r).ok())
                .or_else(|| u8::try_from(index).ok())
            else {
                continue;
            };
            let Some((public_key, certificate)) =
                self.public_key_of(card, &private, certificates, public_paths, &mut public_keys)?
            else {
                continue;
            };
            let usage = &private.key.usage;
            let is_rsa = matches!(public_key, PublicKey::Rsa { .. });
            let pin = private
                .object
                .auth_id
                .as_ref()
                .and_then(|auth| pins.iter().find(|p| p.auth_id.as_ref() == Some(auth)));
            if let p15::ObjectValue::Path(path) = &private.value {
                key_files.push((reference, path.efid_or_path.clone()));
            }
            // A PIN of its own (not the user PIN): wanted before each use.
            let own_pin = pin
                .filter(|p| user.is_some() && p.auth_id.as_ref() != user)
                .and_then(PinFormat::from_aodf);
            if let Some(format) = &own_pin {
                key_pins.push((reference, format.clone()));
            }
            keys.push(KeyInfo {
                reference,
                id: private.key.id.0.clone(),
                label: private
                    .object
                    .label
                    .clone()
                    .unwrap_or_else(|| format!("Key {}", hex(&private.key.id.0))),
                role: crate::profile::Pkcs15Role::PrivateKey.into(),
                public_key,
                certificate,
                always_authenticate: own_pin.is_some()
                    || private.object.user_consent.is_some_and(|n| n > 0),
                counts_signatures: false,
                no_pin: private.object.auth_id.is_none(),
                own_pin: own_pin.is_some(),
                pin_reference: pin
                    .and_then(|p| u8::try_from(p.reference).ok())
                    .unwrap_or(self.profile.pin.reference),
                can_sign: usage.sign || usage.sign_recover || usage.non_repudiation,
                can_decrypt: is_rsa && (usage.decrypt || usage.unwrap),
                can_derive: !is_rsa
                    && usage.derive
                    && self.options.key_agreement == KeyAgreement::GeneralAuthenticate,
                card_pads: is_rsa && self.options.rsa_raw_algorithm.is_none(),
                recalled: false,
                refusals: Default::default(),
            });
        }
        let mut learned = self.learned();
        learned.key_files = key_files;
        learned.key_pins = key_pins;
        Ok(keys)
    }

    /// The DODF's opaque data objects the engine can read (a value in a
    /// file or in the DODF itself); [`Learned::data_values`] says where.
    pub(super) fn data_objects(&self, objects: Vec<p15::DataObject>) -> Vec<DataObjectInfo> {
        let mut infos = Vec::new();
        let mut values = Vec::new();
        for object in objects {
            let value = match object.value {
                p15::ObjectValue::Unsupported => {
                    log::warn!("PKCS#15 data object not readable: not listed");
                    continue;
                }
                value => value,
            };
            infos.push(DataObjectInfo {
                label: object.object.label.clone().unwrap_or_default(),
                application: object.application_name.clone().unwrap_or_default(),
                object_id: object
                    .application_oid
                    .map(|oid| crate::iso7816::tlv::encode(0x06, oid.as_bytes()))
                    .unwrap_or_default(),
                private: object.object.auth_id.is_some() || object.object.flags.private,
                value: match &value {
                    p15::ObjectValue::Direct(bytes) => Some(bytes.clone()),
                    _ => None,
                },
            });
            values.push(value);
        }
        self.learned().data_values = values;
        infos
    }
}

/// A public key as a PKCS#15 card stores it (ISO/IEC 7816-15
/// `PublicKeyObject` value): a SubjectPublicKeyInfo (also inside `[1]`, as
/// a direct value), or an RSAPublicKey. A bare EC point is not taken: it
/// does not name its curve.
fn public_key_from_der(data: &[u8]) -> Option<PublicKey> {
    use der::Decode;
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::traits::PublicKeyParts;
    let data = match data {
        [0xA1, ..] => crate::iso7816::tlv::read(data).ok()?.0.value,
        _ => data,
    };
    if let Ok(spki) = spki::SubjectPublicKeyInfoOwned::from_der(data) {
        return PublicKey::from_spki(&spki).ok();
    }
    let rsa = rsa::RsaPublicKey::from_pkcs1_der(data).ok()?;
    Some(PublicKey::Rsa {
        modulus: rsa.n().to_bytes_be(),
        public_exponent: rsa.e().to_bytes_be(),
    })
}

/// `bytes` in upper-case hex (an iD in a label, a serial).
pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1::EncodeRsaPublicKey;
    use rsa::pkcs8::EncodePublicKey;

    /// A P-256 SubjectPublicKeyInfo as pkcs15-init writes it (EF 5502).
    const EC_SPKI: &str = "3059301306072A8648CE3D020106082A8648CE3D03010703420004\
        BBC0035E955B1865AD2F1C53A678F7B894C52B2AF02750BA5BD912B93418483D\
        BC0C4BF3669597032C41672939CAD33314A39CEC8C29368690DB059F115BFBCA";

    fn unhex(text: &str) -> Vec<u8> {
        crate::profile::schema::parse_hex(text).unwrap()
    }

    #[test]
    fn public_keys_are_read_in_the_forms_pkcs15_cards_store() {
        let spki = unhex(EC_SPKI);
        let Some(PublicKey::Ec { curve, point }) = public_key_from_der(&spki) else {
            panic!("an EC key")
        };
        assert_eq!(curve, Curve::P256);
        assert_eq!(point, spki[26..]);
        // A direct value: the SubjectPublicKeyInfo inside [1].
        let wrapped = crate::iso7816::tlv::encode(0xA1, &spki);
        assert!(matches!(
            public_key_from_der(&wrapped),
            Some(PublicKey::Ec { .. })
        ));

        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024).unwrap();
        let public = key.to_public_key();
        let expected = PublicKey::Rsa {
            modulus: rsa::traits::PublicKeyParts::n(&public).to_bytes_be(),
            public_exponent: rsa::traits::PublicKeyParts::e(&public).to_bytes_be(),
        };
        // An RSAPublicKey (what pkcs15-init writes for RSA, EF 5501) and a
        // SubjectPublicKeyInfo.
        let pkcs1 = public.to_pkcs1_der().unwrap();
        assert_eq!(
            public_key_from_der(pkcs1.as_bytes()),
            Some(expected.clone())
        );
        let spki = public.to_public_key_der().unwrap();
        assert_eq!(public_key_from_der(spki.as_bytes()), Some(expected));

        // A bare EC point names no curve; garbage is no key.
        let point = crate::iso7816::tlv::encode(0x04, &unhex(EC_SPKI)[26..]);
        assert_eq!(public_key_from_der(&point), None);
        assert_eq!(public_key_from_der(&[0x30, 0x03, 0x02, 0x01]), None);
        assert_eq!(public_key_from_der(&[0xA1, 0x05, 0x30]), None);
    }
}
