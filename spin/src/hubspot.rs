//! HubSpot webhooks and workflow deliveries on Spin, as the host handles
//! them: the signature scheme is the one the headers announce (the core's
//! rule), the plugin reads which calls the delivery names and plans each
//! request, the app reads each call (and its owner, a departed rep's too)
//! from HubSpot's API, and the plugin decides. A delivery that cannot be
//! processed now (HubSpot's API down) is kept in the shared inbox and
//! processed again by `POST /tick`; one that can never be read is kept
//! with its reason.
//!
//! `POST /tick` also polls HubSpot's calls search when `hubspot_poll` is
//! `true`: the host's cursor (same checkpoint row and JSON), the same
//! defaults (a day back on the first run, 30 s look-back, 200 a page), at
//! most a few pages a tick, one search request at a time (HubSpot allows 4
//! a second per token).
//!
//! Which reads a call needs, in which order, and what a failed one costs
//! is the core's workflow (`kendo_bridge_core::sources::hubspot`), the one
//! the host follows: owner (archived too), dispositions, transcript when
//! `hubspot_transcripts` is `true`.
//!
//! Each search page's contact and deal associations are read in one batch
//! read per kind, as the core's `PageRead` says (the host's rule). Owners
//! and dispositions are cached for the calls of one delivery or one tick's
//! poll. What the host does and this does not: caching owners and
//! dispositions across requests (each request is a fresh instance), and
//! spacing searches (one search at a time here, a few pages a tick).

use anyhow::{Context as _, Result};
use kendo_bridge_core::decision::InputProblem;
use kendo_bridge_core::webhooks::{HubspotSignature, hubspot_signature};
use spin_sdk::http::{Method, Request, Response};

use crate::delivery::{Db, TEAM};
use crate::plugin::kendo::bridge::hubspot::{
    self as hubspot_api, AssociationKind, CallInputs, Cursor, ListedCall, SearchOptions,
};
use crate::plugin::kendo::bridge::signatures::Scheme;
use crate::plugin::kendo::bridge::types::{HttpRequest, SyncMethod};
use crate::{Failed, Processed};
use crate::{json, now_ms, rules, settle, variable, verify};
use kendo_bridge_core::ledger;
use kendo_bridge_core::ledger::CallKey;
use kendo_bridge_core::ledger::inbox::InboxEntry;
use kendo_bridge_core::ledger::intake::{self, Intake};
use kendo_bridge_core::policy::Policy;
use kendo_bridge_core::sources::Lookups;
use kendo_bridge_core::sources::hubspot::{
    self, Association, Associations, CallRead, CallRef, Need, PageNeed, PageRead, StoredCursor,
};
use kendo_bridge_core::sources::poll::{After, Cycle, read_cursor};

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
    // Named as the host names it: the event is part of the delivery's id.
    let event = kendo_bridge_core::webhooks::hubspot_event(req.body());
    crate::receive("hubspot", None, Some(event), req.body())
}

/// Reads the calls a delivery names and decides each. An `Err` is a
/// passing failure (HubSpot's API): the delivery is worth trying again.
pub(crate) async fn process(db: &Db, entry: &InboxEntry, body: &str) -> Result<Processed> {
    let via = if entry.event.as_deref() == Some(kendo_bridge_core::sources::via::WORKFLOW) {
        SyncMethod::Workflow
    } else {
        SyncMethod::Webhook
    };
    let delivery = match hubspot_api::read_webhook(body) {
        Ok(delivery) => delivery,
        Err(e) => return Ok(Processed::Unreadable(InputProblem::from(&e).to_string())),
    };
    let mut statuses = Vec::new();
    let mut cache = Cache::default();
    for why in &delivery.ignored {
        // As the host does: an event the app is not subscribed for says
        // the HubSpot app's subscriptions need a look.
        ledger::health::problem(db, "hubspot", "webhook", why, now_ms() as i64)?;
        statuses.push(serde_json::json!({ "ignored": why }));
    }
    for id in delivery.call_ids {
        let Some(call_body) = fetch(&hubspot_api::call_request(&id)).await? else {
            statuses.push(serde_json::json!({ "call": id, "status": "not in HubSpot (deleted)" }));
            continue;
        };
        let call = match hubspot_api::read_call(&call_body) {
            Ok(call) => call,
            Err(e) => {
                // That call costs itself, recorded as failed with the
                // reason; the delivery's others go on.
                let detail = InputProblem::from(&e).to_string();
                let row = hubspot::unreadable_call(
                    crate::delivery::TEAM,
                    &id,
                    crate::via_name(via),
                    detail.clone(),
                );
                intake::intake(db, &[row], None, now_ms() as i64)?;
                statuses.push(serde_json::json!({ "call": id, "failed": detail }));
                continue;
            }
        };
        // A webhook names one call at a time: the call object's own
        // associations are what the plugin reads, as on the host.
        let none = Associations::default();
        statuses.push(decide(db, &mut cache, &call, &none, via).await?);
    }
    Ok(Processed::Answer(serde_json::json!({ "calls": statuses })))
}

/// Reads what mapping a call needs besides the call (its owner, the
/// dispositions, its transcript when `hubspot_transcripts` is `true`) in
/// the order, and with the failure rules, of the core's workflow (the one
/// the host follows), then decides the call.
async fn decide(
    db: &Db,
    cache: &mut Cache,
    call: &ListedCall,
    associations: &Associations,
    via: SyncMethod,
) -> Result<serde_json::Value> {
    let now = now_ms() as i64;
    let reference = CallRef {
        id: call.id.clone(),
        owner_id: call.owner_id.clone(),
        transcription_id: call.transcription_id.clone(),
    };
    let transcripts = variable("hubspot_transcripts").is_some_and(|v| v == "true");
    let mut read = CallRead::new(
        reference,
        transcripts,
        &cache.owners,
        &cache.dispositions,
        now,
    );
    let inputs = loop {
        let request = match read.next() {
            Need::Map(inputs) => break inputs,
            Need::Owner { owner_id, archived } => hubspot_api::owner_request(&owner_id, archived),
            Need::Dispositions => hubspot_api::dispositions_request(),
            Need::Transcript { transcription_id } => {
                hubspot_api::transcript_request(&transcription_id)
            }
        };
        read.fetched(&request.path, fetch(&request).await)?;
    };
    read.remember(&mut cache.owners, &mut cache.dispositions, now);
    for health in read.health() {
        ledger::health::record(db, "hubspot", health, now_ms() as i64)?;
    }
    let inputs = CallInputs {
        call: call.json.clone(),
        owner: inputs.owner,
        dispositions: inputs.dispositions,
        transcript: inputs.transcript,
        contacts: associations.contacts.clone(),
        deals: associations.deals.clone(),
    };
    let decision = hubspot_api::map_call(&inputs, &rules()?, via);
    let via_name = crate::via_name(via);
    let version = hubspot::version(call.modified_ms);
    let status = settle(db, "hubspot", &call.id, &version, decision, via_name).await?;
    Ok(serde_json::json!({ "call": call.id, "outcome": status }))
}

/// Owners and dispositions read for the calls of one delivery or poll.
#[derive(Default)]
struct Cache {
    owners: Lookups,
    dispositions: Lookups,
}

/// The core's defaults (the host's `lookback`, `page_size`); the first
/// poll's look-back is `first_look_back_hours`.
const OPTIONS: SearchOptions = SearchOptions {
    limit: Policy::DEFAULT.hubspot.page_size,
    lookback_ms: Policy::DEFAULT.hubspot.search_look_back_ms as u64,
};
/// Pages read per tick (the core's policy).
const PAGES_PER_TICK: usize = Policy::DEFAULT.tick.hubspot_pages;

/// What a poll read.
pub struct Polled {
    pub pages: usize,
    pub calls: usize,
    pub rejected: usize,
}

/// Reads up to [`PAGES_PER_TICK`] pages of HubSpot's calls search from the
/// checkpoint and decides each call; the checkpoint moves after each page.
pub async fn poll(db: &Db) -> Result<Polled> {
    let now = now_ms();
    // The core's cycle: each page's decisions and the checkpoint moved past
    // it together, moved on only from where this tick found it.
    let (mut cycle, stored) = Cycle::start(db, "hubspot", PAGES_PER_TICK as u32)?;
    // The stored cursor (the host's shape); none yet, or one that cannot
    // be read (said in the log, as the host does): the first look-back,
    // fixed at the first poll so a failing first poll loses no call.
    let (cursor, unreadable) = read_cursor::<StoredCursor>(stored.as_deref());
    if let Some(why) = unreadable {
        crate::log::line("cursor-unreadable", &[("source", "hubspot"), ("why", &why)]);
    }
    let mut at = match cursor {
        Some(c) => Cursor {
            since_ms: c.since_ms,
            after: c.after,
            high_water_ms: c.high_water_ms,
        },
        None => {
            let first = (now as i64).saturating_sub(crate::policy::first_look_back_ms());
            let since = ledger::checkpoint::first_look_back(db, "hubspot", first)?;
            Cursor {
                since_ms: Some(since.max(0) as u64),
                after: None,
                high_water_ms: None,
            }
        }
    };
    let mut polled = Polled {
        pages: 0,
        calls: 0,
        rejected: 0,
    };
    let mut cache = Cache::default();
    loop {
        let request = hubspot_api::search_request(&at, OPTIONS);
        let body = fetch(&request)
            .await?
            .context("HubSpot's calls search answered 404: check hubspot_api_url")?;
        let page = hubspot_api::read_search(&at, OPTIONS, &body).map_err(|e| {
            anyhow::anyhow!(
                "HubSpot's search page cannot be read: {}",
                InputProblem::from(&e)
            )
        })?;
        let mut unsettled = Vec::new();
        for call in &page.calls {
            let version = hubspot::version(call.modified_ms);
            if !intake::is_settled(db, "hubspot", &call.id, &version)? {
                unsettled.push(call.id.clone());
            }
        }
        let associations = associations(db, unsettled.clone()).await?;
        for call in &page.calls {
            let version = hubspot::version(call.modified_ms);
            if !unsettled.contains(&call.id) {
                // Already sent or decided at this version: the sighting is
                // counted, the owner and dispositions reads spared.
                let key = CallKey {
                    source: "hubspot".into(),
                    source_id: call.id.clone(),
                    team: TEAM.into(),
                };
                let seen = Intake::seen(key, &version, crate::via_name(SyncMethod::Polling));
                intake::intake(db, &[seen], None, now_ms() as i64)?;
                continue;
            }
            decide(db, &mut cache, call, &associations, SyncMethod::Polling).await?;
        }
        let position = format!(
            "{}-{}",
            at.since_ms.unwrap_or_default(),
            at.after.as_deref().unwrap_or("0")
        );
        let failed = crate::rejected_rows("hubspot", &position, 15, &page.rejected);
        polled.pages += 1;
        polled.calls += page.calls.len();
        polled.rejected += page.rejected.len();
        let stored = StoredCursor {
            since_ms: page.next.since_ms,
            after: page.next.after.clone(),
            high_water_ms: page.next.high_water_ms,
        };
        // The rejected records and the cursor past them, together.
        let next = serde_json::to_string(&stored)?;
        match cycle.page(db, &failed, next, page.more, now_ms() as i64)?.1 {
            After::Next => at = page.next,
            // Done, or another instance polls too and goes on from there.
            After::Done | After::Moved => break,
        }
    }
    Ok(polled)
}

/// Contact and deal associations of a page's unsettled calls, read as the
/// core's [`PageRead`] says (the host's rule): one batch read per kind; a
/// passing failure fails the page (read again next tick), any other is a
/// health problem and the calls go without.
async fn associations(db: &Db, call_ids: Vec<String>) -> Result<Associations> {
    let mut read = PageRead::new(call_ids);
    let found = loop {
        let request = match read.next() {
            PageNeed::Map(found) => break found,
            PageNeed::Associations { kind, call_ids } => {
                let kind = match kind {
                    Association::Contacts => AssociationKind::Contacts,
                    Association::Deals => AssociationKind::Deals,
                };
                hubspot_api::associations_request(kind, &call_ids)
            }
        };
        let answer = fetch(&request).await;
        let passing = answer.as_ref().is_err_and(|e| e.passing);
        read.fetched(answer, passing)?;
    };
    for health in read.health() {
        ledger::health::record(db, "hubspot", health, now_ms() as i64)?;
    }
    Ok(found)
}

/// Makes a request the plugin (or the core's write-back) planned against
/// HubSpot's API: the body of a 2xx, `None` for a 404 (deleted), a
/// [`Failed`] for anything else.
pub(crate) async fn fetch(planned: &HttpRequest) -> Result<Option<String>, Failed> {
    let token = variable("hubspot_token")
        .ok_or_else(|| Failed::lasting("variable hubspot_token is not set".into()))?;
    let base = crate::policy::hubspot_api_url();
    let method = match planned.method.as_str() {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PATCH" => Method::Patch,
        other => {
            return Err(Failed::lasting(format!(
                "the plugin planned HTTP method {other}"
            )));
        }
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
    let response: Response = spin_sdk::http::send(request).await.map_err(|e| Failed {
        message: format!("HubSpot {} {}: {e}", planned.method, planned.path),
        passing: true,
        status: None,
        method: planned.method.clone(),
        path: planned.path.clone(),
    })?;
    match *response.status() {
        200..=299 => Ok(Some(String::from_utf8_lossy(response.body()).into_owned())),
        404 => Ok(None),
        status => Err(Failed {
            message: format!(
                "HubSpot answered {status} to {} {}{}",
                planned.method,
                planned.path,
                if matches!(status, 401 | 403) {
                    " (check the hubspot_token variable and its scopes)".to_string()
                } else {
                    // HubSpot's error body says what was wrong (a deleted
                    // property shows as PROPERTY_DOESNT_EXIST).
                    let body = String::from_utf8_lossy(response.body());
                    let body: String = body.chars().take(300).collect();
                    if body.is_empty() {
                        String::new()
                    } else {
                        format!(": {body}")
                    }
                }
            ),
            passing: kendo_bridge_core::sources::passing(status),
            status: Some(status),
            method: planned.method.clone(),
            path: planned.path.clone(),
        }),
    }
}
