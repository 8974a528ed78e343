//! HubSpot write-back on Spin: the core's pass
//! (`kendo_bridge_core::sources::write_back::pass`) on the app's ports. With
//! `hubspot_write_back = "true"`, Kendo's 201 queues `Kendo Sent` and the
//! `callId`, and Kendo's score queues the score, each in the transaction
//! of its cause; `POST /tick` writes what is due, at most
//! [`WRITE_BACKS_PER_TICK`] a tick, each claimed under a lease so instances
//! sharing the database never write one twice at once.
//!
//! The writes are not spaced here (the host spaces them by
//! `write_back_per_second`): a tick's few writes, one at a time, stay far
//! under HubSpot's burst limit.

use anyhow::Result;
use std::sync::atomic::AtomicBool;

use kendo_bridge_core::sources::write_back::{
    self as workflow, Failure, Pass, Request, SOURCE, WriteBackApi,
};

use crate::Failed;
use crate::delivery::Db;
use crate::plugin::kendo::bridge::types::{Header, HttpRequest};
use crate::plugin_port::SpinPorts;
use crate::{jitter, variable};
use kendo_bridge_core::policy::Policy;

/// Write-backs a tick attempts at most: a tick is one request, with the
/// platform's time limit.
pub const WRITE_BACKS_PER_TICK: u32 = Policy::DEFAULT.tick.write_backs;

/// Whether write-back is on (`hubspot_write_back = "true"`; off by
/// default).
pub fn enabled() -> bool {
    variable("hubspot_write_back").is_some_and(|v| v == "true")
}

/// Writes what is due, by the core's pass on the app's ports.
pub async fn pass(db: &Db) -> Result<Pass> {
    let ports = SpinPorts::new(db)?;
    // The properties are looked at once a tick: each tick is a fresh
    // instance.
    let ensured = AtomicBool::new(false);
    let pass = workflow::pass(
        &ports,
        &Policy::DEFAULT.retry.write_back,
        WRITE_BACKS_PER_TICK,
        &ensured,
    )
    .await?;
    for (call, reason) in &pass.given_up {
        crate::log::line(
            "write-back-dead",
            &[("source", SOURCE), ("call", call), ("reason", reason)],
        );
    }
    Ok(pass)
}

impl WriteBackApi for SpinPorts<'_> {
    type Error = Failed;

    async fn write(&self, request: Request) -> Result<Option<String>, Failed> {
        crate::source_http::hubspot(&http(request)).await
    }

    fn failure<T>(&self, error: &Failed, f: impl FnOnce(Failure<'_>) -> T) -> T {
        f(failure(error))
    }

    fn jitter(&self) -> f64 {
        jitter()
    }
}

/// The core's planned request as the plugin's request type, which
/// [`crate::source_http::hubspot`] makes.
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

/// A failed request as the core's workflow reads it.
fn failure(e: &Failed) -> Failure<'_> {
    Failure {
        status: e.status,
        passing: e.passing,
        method: &e.method,
        path: &e.path,
        message: &e.message,
    }
}
