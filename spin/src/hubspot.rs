//! HubSpot on Spin: the webhook route, and a tick's poll by the core's
//! workflow (`kendo_bridge_core::sources::hubspot::poll`) on the app's ports
//! (`plugin_port.rs`), which says what it reads, in which order, and what
//! each failure costs. A stored delivery goes through the inbox's engine
//! (`inbox.rs`); the API client is `source_http.rs`; the signature scheme is
//! the one the headers announce (`kendo_bridge_core::webhooks`).
//!
//! A tick reads a few search pages (the core's `tick.hubspot_pages`), one
//! request at a time; owners and dispositions are cached for one request
//! (each request is a fresh instance).

use anyhow::Result;
use kendo_bridge_core::policy::Policy;
use kendo_bridge_core::ports::SearchOptions;
use kendo_bridge_core::sources::hubspot;
use kendo_bridge_core::sources::poll::CycleReport;
use kendo_bridge_core::webhooks::{HubspotSignature, hubspot_signature};
use spin_sdk::http::Request;

use crate::delivery::Db;
use crate::plugin::kendo::bridge::signatures::Scheme;
use crate::plugin_port::SpinPorts;
use crate::{json, variable, verify};

/// `POST /webhooks/hubspot`.
pub async fn webhook(req: &Request) -> Result<crate::Reply> {
    let header = |name: &str| {
        req.header(name)
            .and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let Some(signature) = hubspot_signature(header) else {
        return Ok(json(
            401,
            r#"{"error":"no HubSpot signature (X-HubSpot-Signature-v3 with X-HubSpot-Request-Timestamp, or X-HubSpot-Signature with its version)"}"#,
        )
        .into());
    };
    let scheme = match signature {
        HubspotSignature::V1 => Scheme::HubspotV1,
        HubspotSignature::V2 => Scheme::HubspotV2,
        HubspotSignature::V3 => Scheme::HubspotV3,
    };
    // v2 and v3 sign the URL HubSpot called: the public one, not the one
    // the platform's proxy handed the app.
    let uri = match variable("public_url") {
        Some(base) => format!(
            "{}{}",
            base.trim_end_matches('/'),
            req.path_and_query().unwrap_or_default()
        ),
        None => req.uri().to_string(),
    };
    if let Some(refused) = verify(req, scheme, "hubspot_client_secret", &uri) {
        return Ok(refused.into());
    }
    // The event is part of the delivery's id (the core's `delivery_id`).
    let event = kendo_bridge_core::webhooks::hubspot_event(req.body());
    crate::receive("hubspot", None, Some(event), req.body())
}

/// The core's defaults (the host's `lookback`, `page_size`); the first
/// poll's look-back is `first_look_back_hours`.
const OPTIONS: SearchOptions = SearchOptions {
    limit: Policy::DEFAULT.hubspot.page_size,
    lookback_ms: Policy::DEFAULT.hubspot.search_look_back_ms as u64,
};

/// Reads a few pages (the core's `tick.hubspot_pages`) of HubSpot's calls
/// search from the checkpoint, by the core's poll cycle on the app's
/// ports; the tick sends what it queued.
pub async fn poll(db: &Db) -> Result<CycleReport> {
    let settings = hubspot::PollSettings {
        options: OPTIONS,
        transcripts: variable("hubspot_transcripts").is_some_and(|v| v == "true"),
        max_pages: Policy::DEFAULT.tick.hubspot_pages as u32,
    };
    let start = hubspot::Start::Stored {
        first_look_back_ms: crate::policy::first_look_back_ms(),
    };
    let ports = SpinPorts::new(db)?;
    let cycle = hubspot::poll(&ports, hubspot::SOURCE, start, settings, |_| {}).await?;
    if let Some(why) = &cycle.cursor_unreadable {
        crate::log::line("cursor-unreadable", &[("source", "hubspot"), ("why", why)]);
    }
    Ok(cycle)
}
