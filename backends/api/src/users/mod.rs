//! Users: the `users` table and the one way the endpoints read it.
//!
//! A user is written once, whole, at sign-up and never changed afterwards, so a row found
//! by its email or its id can be remembered by each origin process (the `memo`) and served
//! from there without asking the database again. Both lookups (by email for the profile,
//! by id for the user record) go through one read-through path ([`Users`]); keeping the
//! row type, the memo and the queries together keeps that immutability argument, which the
//! memo depends on, next to the only code that writes a user.

mod lookup;
mod memo;
mod row;
mod store;

pub use lookup::Users;
pub use row::UserRow;
