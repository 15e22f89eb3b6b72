//! Mailchimp → QuickBooks Online: list events become customer activity (being built, issue 5).
