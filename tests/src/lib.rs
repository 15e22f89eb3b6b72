pub mod fake_runtime;
pub mod conformance;
pub mod moto;
