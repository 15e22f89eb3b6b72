//! mailchimp.
