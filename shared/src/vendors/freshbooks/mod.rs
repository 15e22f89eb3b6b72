//! freshbooks.
