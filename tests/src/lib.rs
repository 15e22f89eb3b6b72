pub mod conformance;
pub mod fake_runtime;
pub mod moto;
pub mod sandbox;
