pub mod conformance;
pub mod fake_runtime;
pub mod moto;
pub mod pipeline;
pub mod token_rig;
/// The vendor sandboxes live in their own crate (the CLI's demo uses them too); this keeps
/// `mlc_tests::sandbox::…` paths working.
pub use mlc_sandbox as sandbox;

/// Runs each named scenario `async fn name(backend: Backend)` as two tests, one on the embedded
/// adapters (`embedded::name`) and one on moto (`moto::name`).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::pipeline::Backend::Embedded).await;
                }
            )*
        }
        mod moto {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::pipeline::Backend::Moto).await;
                }
            )*
        }
    };
}
