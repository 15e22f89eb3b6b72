//! The QuickBooks worker's target handler (being built, issue 5).
