//! Content-coding negotiation (RFC 9110 §12.5.3): which stored variant of a file answers a
//! request, given its `Accept-Encoding` and the variants published.
//!
//! The rules:
//! - each coding's weight is its own entry's `q` (names are case-insensitive; `x-gzip` is
//!   `gzip`, §8.4.1.3), else the `*` entry's, else 0;
//! - `identity` is always acceptable unless an `identity` entry, or failing that a `*`
//!   entry, gives it a weight (`identity;q=0`, `*;q=0`); left unnamed, it ranks below every
//!   coding the client named with a non-zero weight: `gzip;q=0.5` asks for gzip (as nginx
//!   and Apache read it), not for the bytes the client never mentioned;
//! - the highest weight wins; ties go to `br`, then `gzip`, then identity (smallest first);
//! - no `Accept-Encoding` at all: identity. §12.5.3 would allow any coding, but a client
//!   that says nothing (curl, many bots) is best served bytes it surely reads;
//! - nothing acceptable (say `identity;q=0` and no variant): identity anyway. §12.5.3 lets
//!   a server disregard the field rather than answer 406, and a page beats an error;
//! - parsing work is bounded: entries after the first [`MAX_ACCEPT_ENCODING_ENTRIES`] are
//!   ignored, and a malformed entry (or a malformed `q`) is skipped, never an error.
//!
//! `Vary: Accept-Encoding` is needed whenever the file has any variant, whichever is chosen:
//! a cache must not hand the identity answer to a client that would take brotli, or back.

use super::manifest::Coding;

/// Entries of `Accept-Encoding` read; later ones are ignored.
pub const MAX_ACCEPT_ENCODING_ENTRIES: usize = 16;

/// The outcome: which variant to send, and whether the answer must say `Vary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// `None`: the identity file.
    pub coding: Option<Coding>,
    pub vary_accept_encoding: bool,
}

/// The weights (in thousandths) an `Accept-Encoding` value gives.
#[derive(Default)]
struct Weights {
    br: Option<u16>,
    gzip: Option<u16>,
    identity: Option<u16>,
    any: Option<u16>,
}

/// Chooses among `available` (the file's variants) for `accept_encoding`; see the module doc.
pub fn negotiate(accept_encoding: Option<&str>, available: &[Coding]) -> Negotiated {
    let vary_accept_encoding = !available.is_empty();
    let coding = accept_encoding.and_then(|value| choose(&weights(value), available));
    Negotiated {
        coding,
        vary_accept_encoding,
    }
}

fn choose(w: &Weights, available: &[Coding]) -> Option<Coding> {
    let of = |own: Option<u16>| own.or(w.any).unwrap_or(0);
    // Unnamed identity: acceptable, but below any coding named with a weight above 0.
    let identity = w.identity.or(w.any).unwrap_or(1);
    let mut best: Option<(u16, Option<Coding>)> = None;
    // Preference order: on equal weight, the first one seen stays.
    for (coding, q) in [(Coding::Br, of(w.br)), (Coding::Gzip, of(w.gzip))] {
        if q > 0 && available.contains(&coding) && best.is_none_or(|(b, _)| q > b) {
            best = Some((q, Some(coding)));
        }
    }
    match best {
        Some((q, coding)) if q >= identity => coding,
        _ => None,
    }
}

fn weights(value: &str) -> Weights {
    let mut w = Weights::default();
    for entry in value.split(',').take(MAX_ACCEPT_ENCODING_ENTRIES) {
        let mut parts = entry.split(';');
        let name = parts.next().unwrap_or_default().trim_matches([' ', '\t']);
        let Some(q) = qvalue(parts) else { continue };
        let slot = match name.to_ascii_lowercase().as_str() {
            "br" => &mut w.br,
            "gzip" | "x-gzip" => &mut w.gzip,
            "identity" => &mut w.identity,
            "*" => &mut w.any,
            _ => continue,
        };
        // A coding listed twice: the first entry counts.
        slot.get_or_insert(q);
    }
    w
}

/// The weight an entry's parameters give (1000 when there is no `q`); `None` when a `q` is
/// malformed, so the entry is skipped.
fn qvalue<'a>(params: impl Iterator<Item = &'a str>) -> Option<u16> {
    for param in params {
        let (name, value) = param.split_once('=')?;
        if name.trim_matches([' ', '\t']).eq_ignore_ascii_case("q") {
            return parse_q(value.trim_matches([' ', '\t']));
        }
    }
    Some(1000)
}

/// RFC 9110 §12.4.2 `qvalue`: `0[.ddd]` or `1[.000]`, in thousandths.
fn parse_q(v: &str) -> Option<u16> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = frac.bytes().chain(std::iter::repeat(b'0')).take(3);
    let frac_value = thousandths.fold(0u16, |acc, b| acc * 10 + u16::from(b - b'0'));
    match int {
        "0" => Some(frac_value),
        "1" if frac_value == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: &[Coding] = &[Coding::Br, Coding::Gzip];

    fn pick(ae: &str, available: &[Coding]) -> Option<Coding> {
        negotiate(Some(ae), available).coding
    }

    #[test]
    fn browsers_get_brotli_then_gzip() {
        assert_eq!(pick("gzip, deflate, br, zstd", BOTH), Some(Coding::Br));
        assert_eq!(
            pick("gzip, deflate, br", &[Coding::Gzip]),
            Some(Coding::Gzip)
        );
        assert_eq!(pick("gzip, deflate", BOTH), Some(Coding::Gzip));
        assert_eq!(pick("deflate", BOTH), None);
        assert_eq!(pick("BR", BOTH), Some(Coding::Br));
        assert_eq!(pick("x-gzip", BOTH), Some(Coding::Gzip));
    }

    #[test]
    fn q_values_are_honoured() {
        assert_eq!(pick("br;q=0.5, gzip", BOTH), Some(Coding::Gzip));
        assert_eq!(pick("br;q=0, gzip;q=0", BOTH), None);
        assert_eq!(
            pick("br;q=0.1", BOTH),
            Some(Coding::Br),
            "a named coding wins"
        );
        assert_eq!(pick("br;q=0, gzip;q=0.5", BOTH), Some(Coding::Gzip));
        assert_eq!(
            pick("br;q=0.1, identity", BOTH),
            None,
            "identity named at q=1"
        );
        assert_eq!(pick("br;q=0.1, identity;q=0", BOTH), Some(Coding::Br));
        assert_eq!(pick("br ; Q=1.000", BOTH), Some(Coding::Br));
        assert_eq!(pick("gzip;q=1, br;q=0.999", BOTH), Some(Coding::Gzip));
    }

    #[test]
    fn the_wildcard_and_identity() {
        assert_eq!(pick("*", BOTH), Some(Coding::Br));
        assert_eq!(pick("*;q=0.5, gzip", BOTH), Some(Coding::Gzip));
        assert_eq!(
            pick("*;q=0", BOTH),
            None,
            "nothing acceptable: identity anyway"
        );
        assert_eq!(pick("identity", BOTH), None);
        assert_eq!(pick("identity;q=0", &[]), None);
        assert_eq!(pick("*;q=0, identity", BOTH), None);
    }

    #[test]
    fn absent_or_empty_means_identity() {
        assert_eq!(negotiate(None, BOTH).coding, None);
        assert_eq!(pick("", BOTH), None);
    }

    #[test]
    fn vary_whenever_the_file_has_variants() {
        assert!(negotiate(None, BOTH).vary_accept_encoding);
        assert!(negotiate(Some("br"), &[Coding::Gzip]).vary_accept_encoding);
        assert!(!negotiate(Some("br"), &[]).vary_accept_encoding);
    }

    #[test]
    fn malformed_entries_are_skipped() {
        assert_eq!(pick("br;q=2, gzip", BOTH), Some(Coding::Gzip));
        assert_eq!(pick("br;q=0.1234, gzip", BOTH), Some(Coding::Gzip));
        assert_eq!(pick("br;q=, gzip", BOTH), Some(Coding::Gzip));
        assert_eq!(pick("br;q=-1, gzip", BOTH), Some(Coding::Gzip));
        assert_eq!(pick("br;level, gzip", BOTH), Some(Coding::Gzip));
        assert_eq!(pick("br;q=1.5", BOTH), None);
    }

    #[test]
    fn the_first_duplicate_counts_and_work_is_bounded() {
        assert_eq!(pick("br;q=0, br", BOTH), None);
        let late = format!("{}br", "x, ".repeat(MAX_ACCEPT_ENCODING_ENTRIES));
        assert_eq!(pick(&late, BOTH), None);
    }

    #[test]
    fn qvalues() {
        assert_eq!(parse_q("0"), Some(0));
        assert_eq!(parse_q("0."), Some(0));
        assert_eq!(parse_q("0.5"), Some(500));
        assert_eq!(parse_q("0.05"), Some(50));
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("1.0"), Some(1000));
        for bad in ["", "1.001", "2", "0.1234", ".5", "0.a", "+1", "01"] {
            assert_eq!(parse_q(bad), None, "{bad}");
        }
    }

    #[test]
    fn odd_inputs_never_panic() {
        let odd = [
            "\u{0}",
            ";;;",
            ",,,",
            "=;=",
            "q=1",
            ";q=1",
            "é;q=0.5",
            "*;q=0.5;q=1",
        ];
        for ae in odd {
            let _ = negotiate(Some(ae), BOTH);
        }
        let _ = negotiate(Some(&"br;q=0.5,".repeat(100_000)), BOTH);
    }
}
