//! The one request to Kendo, with an answer timeout. Spin SDK's `send`
//! offers no request options, and a Kendo request must not outlive its
//! send's claim: past the lease another instance takes the send over and
//! sends the call again. So this request is made through `wasi:http`
//! directly, with `request-options` (connect, first-byte and between-bytes
//! timeouts), which Spin's outbound HTTP (wasmtime-wasi-http) honours.

use wasi::http::outgoing_handler;
use wasi::http::types::{
    ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use wasi::io::streams::StreamError;

/// An answer as read: status, headers, body.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// How the request ended without an answer.
#[derive(Debug)]
pub enum NoReply {
    /// Kendo never saw it (no connection was made).
    Unsent(String),
    /// It may have reached Kendo (a timeout, a dropped connection).
    Lost(String),
    /// The runtime refused to make it (Spin's `allowed_outbound_hosts`
    /// does not list the URL): nothing left, and nothing will until the
    /// manifest changes.
    Refused(String),
}

/// `POST url` with `headers` and `body`, waiting at most `timeout_ms` for
/// the connection, the answer's first byte, and between its bytes.
pub fn post(
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout_ms: u64,
) -> Result<Reply, NoReply> {
    let (scheme, rest) = match url.split_once("://") {
        Some(("https", rest)) => (Scheme::Https, rest),
        Some(("http", rest)) => (Scheme::Http, rest),
        _ => return Err(NoReply::Unsent(format!("not an http(s) URL: {url}"))),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    let unsent = |what: &str| NoReply::Unsent(format!("{what} refused by the runtime"));
    // With its length: an outgoing body without one goes chunked, which
    // some proxies in front of an API refuse.
    let mut fields: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(n, v)| ((*n).to_string(), v.as_bytes().to_vec()))
        .collect();
    fields.push(("content-length".into(), body.len().to_string().into_bytes()));
    let fields = Fields::from_list(&fields).map_err(|e| NoReply::Unsent(format!("{e:?}")))?;
    let request = OutgoingRequest::new(fields);
    request
        .set_method(&Method::Post)
        .map_err(|()| unsent("method"))?;
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| unsent("scheme"))?;
    request
        .set_authority(Some(authority))
        .map_err(|()| unsent("authority"))?;
    request
        .set_path_with_query(Some(path))
        .map_err(|()| unsent("path"))?;
    let outgoing = request.body().map_err(|()| unsent("body"))?;
    let options = RequestOptions::new();
    let ns = Some(timeout_ms.saturating_mul(1_000_000));
    // A runtime that cannot set one keeps its own default.
    let _ = options.set_connect_timeout(ns);
    let _ = options.set_first_byte_timeout(ns);
    let _ = options.set_between_bytes_timeout(ns);
    let future = outgoing_handler::handle(request, Some(options)).map_err(classify)?;
    // The request's own outcome explains a body that cannot be written: a
    // runtime that refuses the request (Spin's outbound hosts) may close
    // the body stream before the future reports the refusal, and that
    // request never left.
    let refused_or = |lost: NoReply| {
        future.subscribe().block();
        match future.get() {
            Some(Ok(Err(e))) => classify(e),
            _ => lost,
        }
    };
    let written = (|| {
        let stream = outgoing.write().map_err(|()| unsent("body stream"))?;
        for chunk in body.chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| NoReply::Lost(format!("writing the body: {}", stream_error(e))))?;
        }
        Ok(())
    })();
    if let Err(lost) = written {
        return Err(refused_or(lost));
    }
    if let Err(e) = OutgoingBody::finish(outgoing, None) {
        return Err(refused_or(classify(e)));
    }
    future.subscribe().block();
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(e))) => return Err(classify(e)),
        Some(Err(())) | None => return Err(NoReply::Lost("the answer was taken already".into())),
    };
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(n, v)| (n, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let incoming = response
        .consume()
        .map_err(|()| NoReply::Lost("the answer's body was taken already".into()))?;
    let mut body = Vec::new();
    {
        let stream = incoming
            .stream()
            .map_err(|()| NoReply::Lost("the answer's body stream was taken already".into()))?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(bytes) => body.extend_from_slice(&bytes),
                Err(StreamError::Closed) => break,
                Err(e) => {
                    return Err(NoReply::Lost(format!(
                        "reading the answer: {}",
                        stream_error(e)
                    )));
                }
            }
        }
    }
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// Whether Kendo can have seen a request that ended in `e`.
fn classify(e: ErrorCode) -> NoReply {
    match e {
        ErrorCode::HttpRequestDenied => NoReply::Refused(
            "HttpRequestDenied: the URL is not in the component's allowed_outbound_hosts".into(),
        ),
        ErrorCode::DnsTimeout
        | ErrorCode::DnsError(_)
        | ErrorCode::DestinationNotFound
        | ErrorCode::DestinationUnavailable
        | ErrorCode::DestinationIpProhibited
        | ErrorCode::DestinationIpUnroutable
        | ErrorCode::ConnectionRefused
        | ErrorCode::ConnectionTimeout
        | ErrorCode::TlsProtocolError
        | ErrorCode::TlsCertificateError
        | ErrorCode::TlsAlertReceived(_) => NoReply::Unsent(format!("{e:?}")),
        other => NoReply::Lost(format!("{other:?}")),
    }
}

fn stream_error(e: StreamError) -> String {
    match e {
        StreamError::Closed => "closed".into(),
        StreamError::LastOperationFailed(error) => error.to_debug_string(),
    }
}
