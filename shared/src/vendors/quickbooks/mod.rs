//! quickbooks.
