//! HTTP primitives every phase shares, defined once so that the cache, CORS, rate limits
//! and the sanitizer cannot disagree on what a token is, which headers are hop-by-hop, or
//! how a structured-field string is written. Each file is one RFC concept; nothing here
//! knows about routes, config or the platform.

mod date;
mod hop_by_hop;
pub mod method;
mod sf;
mod token;

pub use date::{parse_http_date, LONG_WEEKDAYS, WEEKDAYS};
/// Wall-clock seconds: the contract crate's, so the edge's idea of "now" (JWT `exp`, cache
/// ages) is the one its signatures are checked against.
pub use fastgate_wire::unix_now;
pub use hop_by_hop::{is_hop_by_hop, HOP_BY_HOP};
pub use sf::sf_string;
pub use token::{is_tchar, is_token};
