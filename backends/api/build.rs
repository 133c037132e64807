//! `sqlx::migrate!` embeds the migration files at compile time; without this, adding a
//! migration would not rebuild the origin, and a stale binary would miss it.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
