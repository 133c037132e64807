//! `Signature-Input` and `Signature` (RFC 9421 §4) read as structured-field dictionaries
//! (RFC 8941) with `sfv`. The contract is stricter than a generic reader in three ways:
//! our label and each of its parameters may appear only once (the RFC's "last one wins"
//! would let a second value hide behind the first); only known parameters are allowed;
//! and the `@signature-params` value is kept byte for byte as sent, because those are the
//! bytes the edge signed.

use std::convert::Infallible;

use axum::http::HeaderName;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use fastgate_wire::{is_valid_nonce, LABEL, SIGNATURE_HEADER, SIGNATURE_INPUT_HEADER};
use sfv::visitor::ParameterVisitor;
use sfv::visitor::{DictionaryVisitor, EntryVisitor, InnerListVisitor, ItemVisitor};
use sfv::{BareItemFromInput, KeyRef, Parser};

use super::error::SignatureError;

pub(super) const SIGNATURE_INPUT: HeaderName = HeaderName::from_static(SIGNATURE_INPUT_HEADER);
pub(super) const SIGNATURE: HeaderName = HeaderName::from_static(SIGNATURE_HEADER);

/// The parsed `fastgate` member of `Signature-Input`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureParams {
    pub covered: Vec<String>,
    pub created: u64,
    pub expires: u64,
    /// 16 bytes of base64url (checked here, so nothing longer ever reaches the nonce store).
    pub nonce: String,
    pub keyid: String,
    pub alg: Option<String>,
    /// The member's value after `fastgate=`, verbatim: the `@signature-params` line's value.
    pub raw: String,
}

/// Parses the `fastgate` member of a `Signature-Input` dictionary: an inner list of
/// strings followed by the parameters `created`, `expires`, `nonce`, `keyid` (required) and
/// `alg` (optional), each at most once; anything else is refused.
pub fn parse_signature_input(header: &str) -> Result<SignatureParams, SignatureError> {
    use SignatureError::MalformedInput as M;
    let member = member(header, SIGNATURE_INPUT, M("not a structured dictionary"))?;
    let items = member
        .entry
        .inner_list
        .ok_or(M("value is not an inner list"))?;
    let covered = items
        .into_iter()
        .map(component)
        .collect::<Result<Vec<_>, _>>()?;
    let mut found = InputParams::default();
    for (key, value) in member.entry.params {
        found.set(key.as_str(), value)?;
    }
    Ok(SignatureParams {
        covered,
        created: found.created.ok_or(M("created is missing"))?,
        expires: found.expires.ok_or(M("expires is missing"))?,
        nonce: found.nonce.ok_or(M("nonce is missing"))?,
        keyid: found.keyid.ok_or(M("keyid is missing"))?,
        alg: found.alg,
        raw: member.raw.to_owned(),
    })
}

/// Parses the `fastgate` member of a `Signature` dictionary: a byte sequence
/// `:<standard base64>:` without parameters.
pub fn parse_signature(header: &str) -> Result<Vec<u8>, SignatureError> {
    use SignatureError::MalformedSignature as M;
    let member = member(header, SIGNATURE, M("not a structured dictionary"))?;
    let bytes = matches!(member.entry.item, Some(BareItemFromInput::ByteSequence(_)));
    if !bytes || !member.entry.params.is_empty() {
        return Err(M("value is not a byte sequence"));
    }
    // sfv decodes leniently (padding optional); the contract is padded standard base64.
    let b64 = member
        .raw
        .strip_prefix(':')
        .and_then(|r| r.strip_suffix(':'))
        .ok_or(M("value is not a byte sequence"))?;
    STANDARD.decode(b64).map_err(|_| M("not standard base64"))
}

/// One covered component: a string without parameters.
fn component(entry: Entry<'_>) -> Result<String, SignatureError> {
    use SignatureError::MalformedInput as M;
    let Some(BareItemFromInput::String(name)) = entry.item else {
        return Err(M("inner list item is not a string"));
    };
    if !entry.params.is_empty() {
        return Err(M("component parameters are not supported"));
    }
    Ok(name.as_str().to_owned())
}

/// The `Signature-Input` parameters seen so far.
#[derive(Default)]
struct InputParams {
    created: Option<u64>,
    expires: Option<u64>,
    nonce: Option<String>,
    keyid: Option<String>,
    alg: Option<String>,
}

impl InputParams {
    fn set(&mut self, key: &str, value: BareItemFromInput<'_>) -> Result<(), SignatureError> {
        use SignatureError::MalformedInput as M;
        match key {
            "created" => fill(
                &mut self.created,
                non_negative(value),
                "created is not an integer",
            ),
            "expires" => fill(
                &mut self.expires,
                non_negative(value),
                "expires is not an integer",
            ),
            "nonce" => fill(
                &mut self.nonce,
                string(value).filter(|n| is_valid_nonce(n)),
                "nonce is not 16 bytes of base64url",
            ),
            "keyid" => fill(&mut self.keyid, string(value), "keyid is not a string"),
            "alg" => fill(&mut self.alg, string(value), "alg is not a string"),
            _ => Err(M("unsupported parameter")),
        }
    }
}

/// Stores a parameter's `value` (`None` when of the wrong type, refused as `wrong_type`) in
/// its `slot`, which must still be empty.
fn fill<T>(
    slot: &mut Option<T>,
    value: Option<T>,
    wrong_type: &'static str,
) -> Result<(), SignatureError> {
    use SignatureError::MalformedInput as M;
    let value = value.ok_or(M(wrong_type))?;
    if slot.replace(value).is_some() {
        return Err(M("repeated parameter"));
    }
    Ok(())
}

fn non_negative(value: BareItemFromInput<'_>) -> Option<u64> {
    match value {
        BareItemFromInput::Integer(i) => u64::try_from(i).ok(),
        _ => None,
    }
}

fn string(value: BareItemFromInput<'_>) -> Option<String> {
    match value {
        BareItemFromInput::String(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// The `fastgate` member of a dictionary: its value as written, and as parsed.
struct Member<'de> {
    /// After `fastgate=`, without the whitespace and comma that separate it from the next
    /// member.
    raw: &'de str,
    entry: Entry<'de>,
}

/// Finds the one `fastgate` member of a dictionary header. The whole header must be a
/// valid dictionary (`malformed` otherwise), even where it holds other signatures.
fn member<'de>(
    dict: &'de str,
    header: HeaderName,
    malformed: SignatureError,
) -> Result<Member<'de>, SignatureError> {
    let found = Parser::new(dict)
        .parse_dictionary_with_visitor(FindLabel::new(dict))
        .map_err(|_| malformed.clone())?;
    let index = match found.labels[..] {
        [] => return Err(SignatureError::MissingLabel(header)),
        [index] => index,
        _ => return Err(SignatureError::RepeatedLabel(header)),
    };
    let next = found
        .starts
        .get(index + 1)
        .copied()
        .unwrap_or(Some(dict.len()));
    let text = found.starts[index]
        .zip(next)
        .and_then(|(key, next)| dict.get(key + LABEL.len()..next))
        .ok_or(malformed)?;
    // Up to the next key there is only `,` with optional whitespace around it.
    let raw = text.strip_prefix('=').unwrap_or("");
    let raw = raw.trim_end_matches([' ', '\t']);
    let raw = raw
        .strip_suffix(',')
        .unwrap_or(raw)
        .trim_end_matches([' ', '\t']);
    Ok(Member {
        raw,
        entry: found.entry,
    })
}

/// Where `part`, a slice sfv borrowed from `whole`, starts in it. sfv hands keys out as
/// slices of its input; that is how the text of a member is found without re-parsing.
fn offset_in(whole: &str, part: &str) -> Option<usize> {
    let at = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    whole.get(at..)?.starts_with(part).then_some(at)
}

/// The dictionary visitor: where every key starts, which of them are ours, and our
/// member's value.
struct FindLabel<'de> {
    dict: &'de str,
    starts: Vec<Option<usize>>,
    labels: Vec<usize>,
    entry: Entry<'de>,
}

impl<'de> FindLabel<'de> {
    fn new(dict: &'de str) -> Self {
        Self {
            dict,
            starts: Vec::new(),
            labels: Vec::new(),
            entry: Entry::default(),
        }
    }
}

/// A dictionary member's value, or one item of its inner list, with every parameter kept,
/// repeats included (sfv's own types keep only the last).
#[derive(Default)]
struct Entry<'de> {
    /// The bare item, when the value is one item.
    item: Option<BareItemFromInput<'de>>,
    /// The items, when the value is an inner list.
    inner_list: Option<Vec<Entry<'de>>>,
    /// The value's own parameters, in order.
    params: Vec<(&'de KeyRef, BareItemFromInput<'de>)>,
}

impl<'de> DictionaryVisitor<'de> for FindLabel<'de> {
    type Out = Self;
    type Error = Infallible;

    fn entry(&mut self, key: &'de KeyRef) -> Result<impl EntryVisitor<'de>, Self::Error> {
        self.starts.push(offset_in(self.dict, key.as_str()));
        if key.as_str() != LABEL {
            return Ok(None);
        }
        self.labels.push(self.starts.len() - 1);
        self.entry = Entry::default();
        Ok(Some(&mut self.entry))
    }

    fn finish(self) -> Result<Self, Self::Error> {
        Ok(self)
    }
}

impl<'de> EntryVisitor<'de> for &mut Entry<'de> {
    type Error = Infallible;

    fn item(self) -> Result<impl ItemVisitor<'de>, Self::Error> {
        Ok(self)
    }

    fn inner_list(self) -> Result<impl InnerListVisitor<'de>, Self::Error> {
        self.inner_list = Some(Vec::new());
        Ok(self)
    }
}

impl<'de> ItemVisitor<'de> for &mut Entry<'de> {
    type Out = ();
    type Error = Infallible;

    fn bare_item(
        self,
        bare_item: BareItemFromInput<'de>,
    ) -> Result<impl ParameterVisitor<'de, Out = ()>, Self::Error> {
        self.item = Some(bare_item);
        Ok(Params(&mut self.params))
    }
}

impl<'de> InnerListVisitor<'de> for &mut Entry<'de> {
    type Error = Infallible;

    fn item(&mut self) -> Result<impl ItemVisitor<'de>, Self::Error> {
        let items = self.inner_list.get_or_insert_with(Vec::new);
        items.push(Entry::default());
        let last = items.len() - 1;
        Ok(&mut items[last])
    }

    fn finish(self) -> Result<impl ParameterVisitor<'de>, Self::Error> {
        Ok(Params(&mut self.params))
    }
}

/// Collects parameters in order.
struct Params<'a, 'de>(&'a mut Vec<(&'de KeyRef, BareItemFromInput<'de>)>);

impl<'de> ParameterVisitor<'de> for Params<'_, 'de> {
    type Out = ();
    type Error = Infallible;

    fn parameter(
        &mut self,
        key: &'de KeyRef,
        value: BareItemFromInput<'de>,
    ) -> Result<(), Self::Error> {
        self.0.push((key, value));
        Ok(())
    }

    fn finish(self) -> Result<(), Self::Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastgate_wire::test_vector::{self, GET, POST};

    #[test]
    fn reads_the_pinned_vectors() {
        for (v, covered) in [
            (GET, &fastgate_wire::COVERED_COMPONENTS[..]),
            (POST, &fastgate_wire::COVERED_WITH_BODY[..]),
        ] {
            let p = parse_signature_input(v.signature_input).unwrap();
            assert_eq!(p.covered, covered);
            assert_eq!(
                (p.created, p.expires),
                (test_vector::CREATED, test_vector::EXPIRES)
            );
            assert_eq!(p.nonce, v.nonce);
            assert_eq!(p.keyid, test_vector::KEY_ID);
            assert_eq!(p.alg.as_deref(), Some(fastgate_wire::ALGORITHM));
            assert_eq!(p.raw, v.params);
            let mac = parse_signature(v.signature).unwrap();
            assert_eq!(mac, STANDARD.decode(v.mac_base64).unwrap());
        }
    }

    #[test]
    fn the_nonce_is_required_once_and_well_formed() {
        let without = GET
            .signature_input
            .replace(&format!(";nonce=\"{}\"", GET.nonce), "");
        assert_eq!(
            parse_signature_input(&without),
            Err(SignatureError::MalformedInput("nonce is missing"))
        );
        let twice = format!("{};nonce=\"{}\"", GET.signature_input, POST.nonce);
        assert_eq!(
            parse_signature_input(&twice),
            Err(SignatureError::MalformedInput("repeated parameter"))
        );
        let long = "A".repeat(10_000);
        for bad in [
            "\"x\"",
            "1",
            "?1",
            "\"AAECAwQFBgcICQoLDA0ODw==\"",
            &format!("\"{long}\""),
        ] {
            let input = GET
                .signature_input
                .replace(&format!("\"{}\"", GET.nonce), bad);
            assert_eq!(
                parse_signature_input(&input),
                Err(SignatureError::MalformedInput(
                    "nonce is not 16 bytes of base64url"
                )),
                "{bad}"
            );
        }
    }

    #[test]
    fn keeps_our_member_verbatim_among_others() {
        let odd = r#"( "@method"  "@path");  created=1;expires=2;nonce="AAECAwQFBgcICQoLDA0ODw";keyid="k""#;
        for dict in [
            format!("fastgate={odd}"),
            format!("fastgate={odd}  "),
            format!("a=1, fastgate={odd} ,\tb=(1 2);x, c"),
            format!(r#"other=("@method");created=1, fastgate={odd}"#),
        ] {
            assert_eq!(parse_signature_input(&dict).unwrap().raw, odd, "{dict}");
        }
        let sig = format!("x=:AAAA:, {}, y=?0", GET.signature);
        assert_eq!(parse_signature(&sig).unwrap().len(), 32);
    }

    #[test]
    fn repeats_and_leniencies_are_refused() {
        let dup = format!("{0}, {0}", GET.signature_input);
        assert_eq!(
            parse_signature_input(&dup),
            Err(SignatureError::RepeatedLabel(SIGNATURE_INPUT))
        );
        // A valid dictionary throughout, even in members that are not ours.
        let junk = format!("{}, other=\"open", GET.signature_input);
        assert!(matches!(
            parse_signature_input(&junk),
            Err(SignatureError::MalformedInput(_))
        ));
        // sfv would accept unpadded base64; the contract does not.
        let unpadded = format!("fastgate=:{}:", GET.mac_base64.trim_end_matches('='));
        assert_eq!(
            parse_signature(&unpadded),
            Err(SignatureError::MalformedSignature("not standard base64"))
        );
        assert_eq!(
            parse_signature("fastgate=?1"),
            Err(SignatureError::MalformedSignature(
                "value is not a byte sequence"
            ))
        );
        assert_eq!(
            parse_signature("other=:AAAA:"),
            Err(SignatureError::MissingLabel(SIGNATURE))
        );
    }
}
