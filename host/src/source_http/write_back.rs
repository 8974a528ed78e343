//! The core's write-back requests ([`kendo_bridge_core::sources::write_back`])
//! on the source client: each planned request as the client makes it, and
//! each failure as the core's workflow reads it.

use kendo_bridge_core::sources::write_back::{Failure, Request, SOURCE, WriteBackApi};

use crate::plugin::types::{Header, HttpRequest};
use crate::ports::HostPorts;
use crate::sources::SourceError;

impl WriteBackApi for HostPorts<'_> {
    type Error = SourceError;

    async fn write(&self, request: Request) -> Result<Option<String>, SourceError> {
        match self.api(SOURCE) {
            Some(api) => api.fetch(&http(request)).await,
            None => Err(SourceError::NoCredentials(SOURCE)),
        }
    }

    fn failure<T>(&self, error: &SourceError, f: impl FnOnce(Failure<'_>) -> T) -> T {
        with_failure(error, f)
    }

    fn jitter(&self) -> f64 {
        rand::random()
    }
}

/// The core's planned request as the source client makes it.
fn http(request: Request) -> HttpRequest {
    let header = |value: &str| Header {
        name: "Content-Type".into(),
        value: value.into(),
    };
    HttpRequest {
        method: request.method.into(),
        headers: request.content_type().map(header).into_iter().collect(),
        path: request.path,
        body: request.body,
    }
}

/// A source client's error as the core's workflow reads it.
fn with_failure<T>(error: &SourceError, f: impl FnOnce(Failure<'_>) -> T) -> T {
    let message = error.to_string();
    let (status, method, path) = match error {
        SourceError::Status {
            status,
            method,
            path,
            ..
        } => (Some(*status), method.as_str(), path.as_str()),
        _ => (None, "", ""),
    };
    f(Failure {
        status,
        passing: error.is_transient(),
        method,
        path,
        message: &message,
    })
}
