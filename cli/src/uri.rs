//! `pkcs11:` URIs (RFC 7512) naming a key by its token's label and its ID.

/// Percent-encodes `bytes` for a `pkcs11:` URI path attribute: RFC 3986's
/// unreserved characters stay, every other byte becomes `%XX`.
fn percent_encode(bytes: &[u8], out: &mut String) {
    for &byte in bytes {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
}

/// The `pkcs11:` URI of the key with `id` on the token labelled `token`:
/// `pkcs11:token=LABEL;id=%XX...` (the ID is always percent-encoded, byte
/// by byte, as RFC 7512 §2.3 recommends for binary values).
pub fn pkcs11_uri(token: &str, id: &[u8]) -> String {
    let mut uri = String::from("pkcs11:token=");
    percent_encode(token.as_bytes(), &mut uri);
    uri.push_str(";id=");
    for byte in id {
        uri.push_str(&format!("%{byte:02X}"));
    }
    uri
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_ids_are_percent_encoded() {
        assert_eq!(
            pkcs11_uri("cardsim 9A PIV Authentication", &[1]),
            "pkcs11:token=cardsim%209A%20PIV%20Authentication;id=%01"
        );
        assert_eq!(
            pkcs11_uri("Jöe;x=1/2%", &[0xAB, 0x45]),
            "pkcs11:token=J%C3%B6e%3Bx%3D1%2F2%25;id=%AB%45"
        );
        assert_eq!(pkcs11_uri("a-b.c_d~", &[]), "pkcs11:token=a-b.c_d~;id=");
    }
}
