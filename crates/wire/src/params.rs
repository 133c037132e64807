//! The signature parameters (RFC 9421 §2.3) and the window they open. A signature only has
//! to survive one hop, so its window is short; the origin bounds it again, with a little
//! clock skew, because it cannot trust a window it did not choose.

use crate::base::Covered;

/// The only algorithm: HMAC-SHA256 with a key shared by the edge and the origin.
pub const ALGORITHM: &str = "hmac-sha256";
/// How long a signature the edge makes stays valid (`expires - created`), in seconds.
pub const LIFETIME_SECS: u64 = 60;
/// The longest window (`expires - created`) the origin accepts, in seconds.
pub const MAX_WINDOW_SECS: u64 = 60;
/// The clock difference the origin allows between edge and origin, in seconds.
pub const CLOCK_SKEW_SECS: u64 = 5;

/// The parameters the edge puts after the covered components.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params<'a> {
    /// Unix seconds at signing.
    pub created: u64,
    /// Unix seconds after which the signature is refused.
    pub expires: u64,
    /// Fresh for every request (see [`crate::nonce`]); the origin refuses a second use on a
    /// request that changes state.
    pub nonce: &'a str,
    /// Which shared key signed; the origin may hold several while keys rotate.
    pub key_id: &'a str,
}

impl<'a> Params<'a> {
    /// Parameters for a signature made at `created`, valid for [`LIFETIME_SECS`].
    #[inline]
    pub fn new(created: u64, nonce: &'a str, key_id: &'a str) -> Self {
        Self {
            created,
            expires: created + LIFETIME_SECS,
            nonce,
            key_id,
        }
    }

    /// The `@signature-params` value, the `Signature-Input` member after `fastgate=`, for a
    /// signature over the `covered` list.
    #[inline]
    pub fn serialize(&self, covered: Covered) -> String {
        format!(
            "{};created={};expires={};nonce=\"{}\";keyid=\"{}\";alg=\"{ALGORITHM}\"",
            covered.inner_list(),
            self.created,
            self.expires,
            self.nonce,
            self.key_id
        )
    }
}

/// Seconds since the Unix epoch, the unit of `created` and `expires`; 0 if the clock is
/// before the epoch (never on a real host).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_vector::{GET, POST};

    #[test]
    fn serializes_the_edge_parameters() {
        let nonce = GET.nonce;
        assert_eq!(
            Params::new(1_700_000_000, nonce, "k1").serialize(Covered::Bodiless),
            r#"("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id");created=1700000000;expires=1700000060;nonce="AAECAwQFBgcICQoLDA0ODw";keyid="k1";alg="hmac-sha256""#
        );
        assert_eq!(
            Params::new(1_700_000_000, nonce, "k1").serialize(Covered::WithBody),
            r#"("@method" "@path" "@query" "fastgate-identity" "fastgate-flags" "x-request-id" "content-digest");created=1700000000;expires=1700000060;nonce="AAECAwQFBgcICQoLDA0ODw";keyid="k1";alg="hmac-sha256""#
        );
        for v in [GET, POST] {
            assert_eq!(v.params().serialize(v.signed().covered()), v.params);
        }
    }

    #[test]
    fn the_edge_lifetime_fits_the_origin_window() {
        const { assert!(LIFETIME_SECS <= MAX_WINDOW_SECS) };
        assert!(unix_now() > 1_700_000_000);
    }
}
