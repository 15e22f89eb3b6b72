//! Store port checks. Each check takes a fresh [`StoreFixture`](super::StoreFixture) and moves
//! its clock by hand: the `now` passed to claims and the clock the store reads expiry against.

pub mod claims;
pub mod data;
pub mod records;

/// A key unique to one check run, so checks can share tables.
pub(crate) fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}
