//! Faults the simulated card injects on purpose, to test the module's
//! handling of real-world card and reader behaviour.

/// Misbehaviour switches, changed at run time through
/// [`SimCard::misbehave`](crate::SimCard::misbehave) (or
/// [`SimPivCard::misbehaviour_mut`](crate::SimPivCard::misbehaviour_mut),
/// [`SimOpenPgpCard::misbehaviour_mut`](crate::SimOpenPgpCard::misbehaviour_mut)).
/// The default is a well-behaved card. One-shot faults clear themselves.
/// They act the same on both kinds of card.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Misbehaviour {
    /// GET DATA (PIV `CB`, OpenPGP `CA`) over short APDUs demands the exact
    /// Le: any other Le (even
    /// `00`) gets `6Cxx` with the right one (ISO 7816-4 §5.1.3); the same
    /// command resent with that Le succeeds. Objects over 256 bytes need
    /// Le `00`, then GET RESPONSE.
    pub exact_le_get_data: bool,
    /// Split every response into pieces of this many data bytes (clamped to
    /// 1..=256 for short APDUs), the rest served by GET RESPONSE after `61xx`.
    pub chunk_responses: Option<usize>,
    /// Truncate the next response (the command itself is processed).
    pub truncate_next: Option<Truncation>,
    /// Replace the next response with these bytes (the command itself is
    /// processed).
    pub garbage_next: Option<Vec<u8>>,
    /// One-shot status words: the next command whose INS is the first
    /// element gets the second as its whole response, without being
    /// processed. Each entry fires once, first match first.
    pub fail_next: Vec<(u8, u16)>,
    /// Remove the card after this many more APDUs: the next one after that
    /// fails with [`TransportError::CardRemoved`](p11card::transport::TransportError)
    /// and the reader shows no card. Only the transport enforces it;
    /// [`SimPivCard::process`](crate::SimPivCard::process) and
    /// [`SimOpenPgpCard::process`](crate::SimOpenPgpCard::process) ignore it.
    pub remove_after: Option<usize>,
    /// PIV only: GENERAL AUTHENTICATE uses another embedded key of the
    /// slot's type, as a second PIV-compatible application on the card,
    /// with keys of its own, would answer (see [`WrongKey`]).
    pub wrong_key: Option<WrongKey>,
    /// EC and EdDSA signatures come back well-formed but forged, r = s = 1
    /// (PIV: DER; OpenPGP: `r || s`), valid under no key.
    pub forged_signatures: bool,
}

/// How long [`Misbehaviour::wrong_key`] lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrongKey {
    /// Until the next SELECT of the PIV application: another process
    /// selected a second application between two of this one's commands.
    UntilSelect,
    /// For good: a card that signs with the wrong key whatever is selected.
    Always,
}

/// The `r || s` form of a forged signature (see
/// [`Misbehaviour::forged_signatures`]), each half `half_len` bytes.
pub(crate) fn forged_signature(half_len: usize) -> Vec<u8> {
    let mut half = vec![0u8; half_len];
    if let Some(last) = half.last_mut() {
        *last = 1;
    }
    [half.clone(), half].concat()
}

/// The DER form (`ECDSA-Sig-Value`, r = s = 1) of a forged signature.
pub(crate) const FORGED_DER_SIGNATURE: [u8; 8] = [0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01];

/// How [`Misbehaviour::truncate_next`] damages a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncation {
    /// Drop SW1 SW2, keep the data.
    DropStatusWord,
    /// Drop this many data bytes from the end of the data, keep SW1 SW2.
    DropDataBytes(usize),
    /// Keep only the first this many bytes of the raw response.
    KeepBytes(usize),
}

impl Truncation {
    pub(crate) fn apply(self, response: &mut Vec<u8>) {
        let len = response.len();
        match self {
            Truncation::DropStatusWord => response.truncate(len.saturating_sub(2)),
            Truncation::DropDataBytes(n) => {
                let data_len = len.saturating_sub(2);
                let cut = n.min(data_len);
                response.drain(data_len - cut..data_len);
            }
            Truncation::KeepBytes(n) => response.truncate(n),
        }
    }
}
