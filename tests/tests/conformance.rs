//! The port conformance suite (`mlc_tests::conformance`) over both adapter sets: the embedded
//! adapters and the AWS adapters on moto. Every check runs once per set, as its own test.

use mlc_tests::conformance::{fixtures, queue, secrets, store};

macro_rules! queue_checks {
    ($fixture:expr => $($check:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let fx = $fixture;
                queue::$check(&fx).await;
            }
        )+
    };
}

macro_rules! store_checks {
    ($fixture:expr => $($module:ident :: $check:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let fx = $fixture;
                store::$module::$check(&fx).await;
            }
        )+
    };
}

mod embedded {
    use super::*;

    mod queue_port {
        use super::*;
        queue_checks!(fixtures::EmbeddedQueues::new() =>
            send_receive_delete, refusals, visibility, redrive_policy, dead_letter_and_redrive,
            delayed_send);
    }

    mod store_port {
        use super::*;
        store_checks!(fixtures::embedded_store() =>
            claims::idempotency, claims::replays, claims::leases, claims::callbacks,
            records::audit, records::dead_letters,
            data::id_map_and_cursors, data::blobs, data::connections);
    }

    #[tokio::test]
    async fn secrets_port() {
        secrets::secrets(&fixtures::embedded_secrets()).await;
    }
}

mod aws_on_moto {
    use super::*;

    mod queue_port {
        use super::*;
        queue_checks!(fixtures::AwsQueues::new().await =>
            send_receive_delete, refusals, visibility, redrive_policy, dead_letter_and_redrive,
            delayed_send);
    }

    mod store_port {
        use super::*;
        store_checks!(fixtures::aws_store().await =>
            claims::idempotency, claims::replays, claims::leases, claims::callbacks,
            records::audit, records::dead_letters,
            data::id_map_and_cursors, data::blobs, data::connections);
    }

    #[tokio::test]
    async fn secrets_port() {
        secrets::secrets(&fixtures::aws_secrets().await).await;
    }
}
