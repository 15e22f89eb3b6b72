pub mod conformance;
pub mod moto;
