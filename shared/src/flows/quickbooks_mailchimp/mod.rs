//! QuickBooks Online → Mailchimp: customers become audience members (being built, issue 5).
