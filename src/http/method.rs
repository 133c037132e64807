//! Request methods: the contract crate's rules ([`fastgate_wire::method`]), which the
//! origin applies too.

pub use fastgate_wire::method::{allow_value, is_forwarded, FORWARDED};
