//! The FreshBooks sandbox (being built).
