//! Local servers that speak the subset of each vendor API the product uses: stateful, with the
//! vendors' auth behaviour, error shapes and limits, plus a control API for tests to inject
//! faults and read state. The end-to-end tests, the demo and the benchmarks run against them.

pub mod freshbooks;
pub mod mailchimp;
