pub mod conformance;
pub mod fake_runtime;
pub mod moto;
pub mod pipeline;
pub mod sandbox;
