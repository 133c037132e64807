//! Edge caching: the pure RFC 9111 decisions, kept free of platform calls so that every
//! rule is tested natively. The adapter (`adapter/cache.rs`) drives Fastly's Core Cache and
//! asks this module what the standards allow, in the order one request meets the files:
//!
//! 1. `policy`: the route's `cache` config and the global settings, validated at load;
//! 2. `request`: may this request use the cache at all ([`request_cacheability`])?
//! 3. `key`: under which key ([`cache_key`]); `surrogate` renders the purge tags;
//! 4. lookup: the adapter's Core Cache call;
//! 5. `storability`: may the origin's answer be stored, and for how long? (read with
//!    `cache_control`'s [`CacheControl`]);
//! 6. `freshness`: is a stored copy fresh, stale-but-servable or dead?
//! 7. `revalidate`: the conditional request, and merging its 304;
//! 8. `meta`: what an entry keeps besides its body, and what a client is told;
//! 9. `status`: the `Cache-Status` header (RFC 9211) saying what happened;
//! 10. `private`: the `Cache-Control` a per-user (or authenticated) answer leaves with;
//! 11. `targeted`: `CDN-Cache-Control` (RFC 9213), which the edge obeys instead of
//!     `Cache-Control` and `Expires` when an origin sends it.
//!
//! The cache is shared (RFC 9111's rules for a shared cache apply even to `per_user`
//! partitions) and conservative: when in doubt it does not store, and it never lets a
//! client-controlled value into a key in the clear.

mod cache_control;
mod freshness;
mod key;
mod meta;
mod policy;
mod private;
mod request;
mod revalidate;
mod status;
mod storability;
mod surrogate;
mod targeted;
#[cfg(test)]
mod tests;

pub use cache_control::{CacheControl, DELTA_SECONDS_CAP};
pub use freshness::{age_header, freshness, stale_allowed_when_disconnected, Freshness};
pub use key::{cache_key, key_hex, normalize_query, user_partition};
pub use meta::{client_not_modified, per_user_client_cache_control, StoredMeta};
pub use policy::{
    validate_templates, BadVaryInput, CacheMode, CachePolicy, CacheSettings, VaryInput,
    DEFAULT_DROP_QUERY_PARAMS, DEFAULT_MAX_OBJECT_BYTES, MAX_CONFIG_TTL_S,
};
pub use private::private_cache_control;
pub use request::{may_serve, request_cacheability, Fwd, Lookup, RequestDirectives};
pub use revalidate::{conditional_headers, merge_304, not_modified_matches};
pub use status::{cache_status, CacheOutcome, CACHE_NAME};
pub use storability::{storability, Storable};
pub use surrogate::{
    is_valid_surrogate_key, subject_tag, surrogate_keys, uri_tag, MAX_SURROGATE_KEY_BYTES,
    SUBJECT_PLACEHOLDER,
};
pub use targeted::{cdn_cache_control, CDN_CACHE_CONTROL};
