//! SDK errors → [`PortError`], keeping the operation, the resource and AWS's error code and
//! message, and nothing from the request (no bodies, no secret values).

use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::ports::PortError;

/// The AWS error code of a service error, if the call got that far.
pub(crate) fn error_code<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> Option<&str> {
    match err {
        SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    }
}

/// Describes a failed call as `<operation> <resource>: <code>: <message>`.
///
/// Service errors carry AWS's code and message (which name the failed condition, never the
/// request's payload); other failures (connection, timeout, an unparseable response) are shown
/// with their cause chain, which holds no request data either.
pub(crate) fn describe<E>(
    operation: &str,
    resource: &str,
    err: &SdkError<E, HttpResponse>,
) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let status = service.raw().status().as_u16();
            match (e.code(), e.message()) {
                (Some(code), Some(message)) => {
                    format!("{operation} `{resource}`: {code}: {message}")
                }
                (Some(code), None) => format!("{operation} `{resource}`: {code}"),
                // e.g. an emulator answering HTML for an operation it does not implement.
                (None, _) => {
                    format!("{operation} `{resource}`: HTTP {status} without an AWS error code")
                }
            }
        }
        other => format!("{operation} `{resource}`: {}", DisplayErrorContext(other)),
    }
}

/// A backend failure of `service` for this call.
pub(crate) fn backend<E>(
    service: &'static str,
    operation: &str,
    resource: &str,
    err: &SdkError<E, HttpResponse>,
) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    PortError::Backend {
        service,
        message: describe(operation, resource, err),
    }
}
