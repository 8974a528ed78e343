//! HubSpot webhooks and workflow deliveries on Spin, as the host handles
//! them: the signature scheme is the one the headers announce (the core's
//! rule), the plugin reads which calls the delivery names and plans each
//! request, the app reads each call (and its owner, a departed rep's too)
//! from HubSpot's API, and the plugin decides. A delivery that cannot be
//! processed now (HubSpot's API down) is kept in the shared inbox and
//! processed again by `POST /tick`; one that can never be read is kept
//! with its reason.
//!
//! What the host does and this does not: dispositions (HubSpot's defaults
//! are known to the plugin without them), call transcripts, association
//! batch reads (the call object's own associations are used), caching.

use anyhow::{Context as _, Result, bail};
use kendo_bridge_core::webhooks::{HubspotSignature, hubspot_signature};
use spin_sdk::http::{Method, Request, Response};

use crate::delivery::Db;
use crate::plugin::kendo::bridge::hubspot::{self as hubspot_api, CallInputs};
use crate::plugin::kendo::bridge::signatures::Scheme;
use crate::plugin::kendo::bridge::types::{HttpRequest, SyncMethod};
use crate::{json, now_ms, rules, settle, variable, verify};

/// `POST /webhooks/hubspot`.
pub async fn webhook(req: &Request) -> Result<Response> {
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
        ));
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
        return Ok(refused);
    }
    let body = String::from_utf8_lossy(req.body()).into_owned();
    let db = Db::open()?;
    match process(&body).await {
        Ok(Processed::Calls(statuses)) => Ok(json(
            200,
            serde_json::json!({ "calls": statuses }).to_string(),
        )),
        Ok(Processed::Unreadable(reason)) => {
            db.inbox_keep("hubspot", req.body(), &reason, true, now_ms() as i64)?;
            Ok(json(
                200,
                serde_json::json!({ "status": "kept, unreadable", "error": reason }).to_string(),
            ))
        }
        Err(e) => {
            // HubSpot is not asked to send it again: the inbox keeps it.
            let reason = format!("{e:#}");
            db.inbox_keep("hubspot", req.body(), &reason, false, now_ms() as i64)?;
            Ok(json(
                200,
                serde_json::json!({ "status": "stored; POST /tick processes it", "error": reason })
                    .to_string(),
            ))
        }
    }
}

/// What processing a delivery came to.
pub enum Processed {
    /// Each named call's outcome, as its webhook answer would say it.
    Calls(Vec<serde_json::Value>),
    /// The delivery can never be read: why.
    Unreadable(String),
}

/// Reads the calls a delivery names and decides each. An `Err` is a
/// passing failure (HubSpot's API): the delivery is worth trying again.
pub async fn process(body: &str) -> Result<Processed> {
    let delivery = match hubspot_api::read_webhook(body) {
        Ok(delivery) => delivery,
        Err(e) => return Ok(Processed::Unreadable(format!("{e:?}"))),
    };
    let mut statuses: Vec<serde_json::Value> = delivery
        .ignored
        .iter()
        .map(|why| serde_json::json!({ "ignored": why }))
        .collect();
    for id in delivery.call_ids {
        let Some(call_body) = fetch(&hubspot_api::call_request(&id)).await? else {
            statuses.push(serde_json::json!({ "call": id, "status": "not in HubSpot (deleted)" }));
            continue;
        };
        let call = match hubspot_api::read_call(&call_body) {
            Ok(call) => call,
            Err(e) => {
                statuses.push(serde_json::json!({ "call": id, "failed": format!("{e:?}") }));
                continue;
            }
        };
        let mut owner = None;
        if let Some(owner_id) = &call.owner_id {
            // A rep who left is a deactivated owner: the plain lookup
            // answers 404 for them, the archived one finds them.
            for archived in [false, true] {
                owner = fetch(&hubspot_api::owner_request(owner_id, archived)).await?;
                if owner.is_some() {
                    break;
                }
            }
        }
        let inputs = CallInputs {
            call: call.json.clone(),
            owner,
            dispositions: None,
            transcript: None,
            contacts: None,
            deals: None,
        };
        let decision = hubspot_api::map_call(&inputs, &rules()?, SyncMethod::Webhook);
        let answer = settle("hubspot", &call.id, decision).await?;
        let status: serde_json::Value =
            serde_json::from_slice(answer.body()).unwrap_or(serde_json::Value::Null);
        statuses.push(serde_json::json!({ "call": call.id, "outcome": status }));
    }
    Ok(Processed::Calls(statuses))
}

/// Makes a request the plugin planned against HubSpot's API: the body of a
/// 2xx, `None` for a 404 (deleted), an error for anything else.
async fn fetch(planned: &HttpRequest) -> Result<Option<String>> {
    let token = variable("hubspot_token").context("variable hubspot_token is not set")?;
    let base = variable("hubspot_api_url").unwrap_or_else(|| "https://api.hubapi.com".into());
    let method = match planned.method.as_str() {
        "GET" => Method::Get,
        "POST" => Method::Post,
        other => bail!("the plugin planned HTTP method {other}"),
    };
    let mut builder = Request::builder();
    builder
        .method(method)
        .uri(format!("{}{}", base.trim_end_matches('/'), planned.path))
        .header("authorization", format!("Bearer {token}"));
    for h in &planned.headers {
        builder.header(h.name.as_str(), h.value.as_str());
    }
    let request = builder
        .body(planned.body.clone().unwrap_or_default())
        .build();
    let response: Response = spin_sdk::http::send(request)
        .await
        .with_context(|| format!("HubSpot {} {}", planned.method, planned.path))?;
    match *response.status() {
        200..=299 => Ok(Some(String::from_utf8_lossy(response.body()).into_owned())),
        404 => Ok(None),
        status => bail!(
            "HubSpot answered {status} to {} {}{}",
            planned.method,
            planned.path,
            if matches!(status, 401 | 403) {
                " (check the hubspot_token variable and its scopes)"
            } else {
                ""
            }
        ),
    }
}
