pub mod conformance;
pub mod fake_runtime;
pub mod moto;
pub mod pipeline;
/// The vendor sandboxes live in their own crate (the CLI's demo uses them too); this keeps
/// `mlc_tests::sandbox::…` paths working.
pub use mlc_sandbox as sandbox;
