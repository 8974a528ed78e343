//! Salesloft on Spin: the route's processing and the API client. What a
//! delivery and a poll do, in which order, and what each failure costs are
//! the core's workflows (`kendo_bridge_core::sources::salesloft`) on the
//! app's ports (`plugin_port.rs`). A tick's poll is capped (the core's
//! `tick.salesloft_*`: requests to the calls and records, transcripts
//! started) and stops early when the team's cost points are nearly out,
//! the last ones left to its other integrations; the next tick goes on.

use anyhow::Result;
use kendo_bridge_core::policy::Policy;
use kendo_bridge_core::sources::salesloft::{self as workflow, Limits, Polled, Settings};
use spin_sdk::http::{Method, Request, Response};

use crate::Failed;
use crate::delivery::Db;
use crate::plugin::kendo::bridge::types::HttpRequest;
use crate::plugin_port::SpinPorts;
use crate::variable;

/// How Salesloft is read here: transcripts with `salesloft_transcripts`;
/// a finished call waits for its call data record only where a poll reads
/// the records (`salesloft_poll`).
pub(crate) fn settings() -> Settings {
    let polls = variable("salesloft_poll").is_some_and(|v| v == "true");
    Settings {
        transcripts: variable("salesloft_transcripts").is_some_and(|v| v == "true"),
        direction_wait_ms: if polls {
            crate::policy::salesloft_direction_wait_ms()
        } else {
            0
        },
        first_look_back_ms: crate::policy::first_look_back_ms(),
    }
}

/// A tick's share of Salesloft's requests.
const LIMITS: Limits = Limits {
    transcripts: Some(Policy::DEFAULT.tick.salesloft_transcript_requests),
    records: Some(Policy::DEFAULT.tick.salesloft_requests / 3),
    calls: Some(Policy::DEFAULT.tick.salesloft_requests),
};

/// One tick's poll; the tick sends what it queued.
pub async fn poll(db: &Db) -> Result<Polled> {
    let ports = SpinPorts::new(db)?;
    let polled = workflow::poll(&ports, settings(), LIMITS, |_| {}).await?;
    for note in &polled.notes {
        crate::log::line("salesloft", &[("note", note)]);
    }
    Ok(polled)
}

/// Makes a request the plugin planned against Salesloft's API: the body of
/// a 2xx (`None` for a 404) and the team's cost points left, as the answer
/// says; a [`Failed`] for anything else.
pub(crate) async fn fetch(planned: &HttpRequest) -> Result<(Option<String>, Option<u64>), Failed> {
    let key = variable("salesloft_api_key")
        .ok_or_else(|| Failed::lasting("variable salesloft_api_key is not set".into()))?;
    let base = crate::policy::salesloft_api_url();
    let method = match planned.method.as_str() {
        "GET" => Method::Get,
        other => {
            return Err(Failed::lasting(format!(
                "the plugin planned HTTP method {other} for Salesloft"
            )));
        }
    };
    let mut builder = Request::builder();
    builder
        .method(method)
        .uri(format!("{}{}", base.trim_end_matches('/'), planned.path))
        .header("authorization", format!("Bearer {key}"));
    for h in &planned.headers {
        builder.header(h.name.as_str(), h.value.as_str());
    }
    let request = builder.body(Vec::new()).build();
    let failed = |message: String, status: Option<u16>, passing: bool| Failed {
        message,
        passing,
        status,
        method: planned.method.clone(),
        path: planned.path.clone(),
    };
    let response: Response = spin_sdk::http::send(request).await.map_err(|e| {
        failed(
            format!("Salesloft {} {}: {e}", planned.method, planned.path),
            None,
            true,
        )
    })?;
    let remaining = response
        .header("x-ratelimit-remaining-minute")
        .and_then(|v| v.as_str())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match *response.status() {
        200..=299 => Ok((
            Some(String::from_utf8_lossy(response.body()).into_owned()),
            remaining,
        )),
        404 => Ok((None, remaining)),
        status => Err(failed(
            format!(
                "Salesloft answered {status} to {} {}{}",
                planned.method,
                planned.path,
                match status {
                    401 | 403 => " (check the salesloft_api_key variable and its scopes)",
                    429 => " (the team's cost points are spent; the next tick goes on)",
                    _ => "",
                }
            ),
            Some(status),
            kendo_bridge_core::sources::passing(status),
        )),
    }
}
