//! The Mailchimp sandbox (being built).
