//! `p11card policy check`: the configured algorithm policy, and for each
//! key of the cards present whether it allows the key, and what it
//! refuses of it.

use crate::{failure, usable_cards, Failure, Io};
use p11card::api::{EcCurve, KeyKind};
use p11card::policy::{KeyRefusal, KeyShape};
use p11card::Context;

/// Prints the policy and its verdict on every key; exit status 0.
pub(crate) fn check(
    context: &Context,
    wanted: Option<&str>,
    io: &mut Io<'_>,
) -> Result<u8, Failure> {
    let policy = context.policy();
    writeln!(io.out, "policy: {}", policy.describe())?;
    let refused_uses = policy.refused_uses();
    for card in usable_cards(context, wanted)? {
        let token = card.token_info().map_err(|err| failure(&err))?;
        writeln!(io.out, "{}: {}", card.reader_name(), token.label)?;
        for key in card.keys().map_err(|err| failure(&err))? {
            let (shape, kind) = match key.kind() {
                KeyKind::Rsa { bits } => (KeyShape::Rsa { bits }, format!("RSA {bits}")),
                KeyKind::Ec(EcCurve::P256) => (KeyShape::Curve("P-256"), "EC P-256".into()),
                KeyKind::Ec(EcCurve::P384) => (KeyShape::Curve("P-384"), "EC P-384".into()),
                KeyKind::Ed25519 => (KeyShape::Curve("Ed25519"), "Ed25519".into()),
                KeyKind::X25519 => (KeyShape::Curve("X25519"), "X25519".into()),
                _ => continue,
            };
            let id: String = key.id().iter().map(|b| format!("{b:02x}")).collect();
            let verdict = match policy.key_refusal(shape) {
                Some(KeyRefusal::RsaTooShort) => format!(
                    "refused: RSA keys need at least {} bits; its private key is not offered",
                    policy.min_rsa_bits()
                ),
                Some(KeyRefusal::Curve) => {
                    "refused: the policy does not list this curve; its private key is not offered"
                        .to_string()
                }
                None if refused_uses.is_empty() => "allowed".to_string(),
                None => format!("allowed, except {}", refused_uses.join(", ")),
            };
            writeln!(io.out, "  key {id} {:?} {kind}: {verdict}", key.label())?;
        }
    }
    Ok(crate::exit::OK)
}
