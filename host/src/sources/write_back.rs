//! HubSpot write-back: after Kendo's 201 the call gets `Kendo Sent` and
//! `Kendo Call ID`; after Kendo's score webhook, `Kendo AI Score` and
//! `Kendo Scored At`. With `Kendo Sent` on every call the bridge delivered,
//! a HubSpot workflow can enrol only calls where it is not true, the
//! idempotency guard Kendo's HubSpot guide recommends.
//!
//! The rows come from the store (queued in the transaction of their
//! cause); this writer runs in a task of its own, paced under HubSpot's
//! limits, so a slow or failing HubSpot never holds up a Kendo send. Each
//! failure is retried with the project's back-off and given up after a
//! bounded number of attempts; a refused credential or scope holds every
//! write-back (no attempt spent) and shows in `status` under `hubspot
//! write-back` with the scope to add.
//!
//! The requests are fixed property writes with no record to interpret, so
//! the host builds them itself rather than asking the plugin. HubSpot API
//! facts (HubSpot's OpenAPI specs, repo
//! HubSpot/HubSpot-public-api-spec-collection @ 99893791383254f5,
//! `PublicApiSpecs/CRM/`):
//!
//! - `PATCH /crm/v3/objects/calls/{callId}` body `{properties}`: scope
//!   `crm.objects.contacts.write` (`Calls/Rollouts/424/v3/calls.json`; the
//!   same in the 2026-03 spec).
//! - `GET /crm/v3/properties/calls/groups/{groupName}`, `POST
//!   /crm/v3/properties/calls/groups` (`PropertyGroupCreate`: `name`,
//!   `label`, `displayOrder`), `GET /crm/v3/properties/calls/{propertyName}`,
//!   `POST /crm/v3/properties/calls` (`PropertyCreate`: `name`, `label`,
//!   `type`, `fieldType`, `groupName`, `description`, `options`)
//!   (`Properties/Rollouts/145899/v3/properties.json`). Creating accepts any
//!   one of 26 scopes, among them `crm.schemas.contacts.write`; none is
//!   specific to calls. Reading accepts `crm.objects.contacts.read`.
//! - Creating a property or group that exists answers 409 (third-party:
//!   `thiscovery_lib` ContactPropertyAndGroupManager treats HTTP CONFLICT as
//!   "already there"); the spec documents only 201 and an error default.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::watch;

use super::{Context, RequestPacing, SourceApi, SourceError};
use crate::pacing::Backoff;
use crate::plugin::types::{Header, HttpRequest};
use crate::store::{Millis, WriteBackItem};
use crate::timefmt;

/// The ledger's name for the source written to.
const SOURCE: &str = "hubspot";
/// The `source_health` topic `status` shows write-back problems under.
pub const TOPIC: &str = "write-back";
/// How long a claimed write-back is not due to anyone else: longer than an
/// attempt can take (the client's 30 s timeout, plus pacing).
const CLAIM_LEASE_MS: Millis = 120_000;
/// The property group the bridge's properties live in.
pub const GROUP: &str = "kendo";
/// The scope `PATCH /crm/v3/objects/calls/{callId}` requires.
pub const PATCH_SCOPE: &str = "crm.objects.contacts.write";
/// One of the scopes `POST /crm/v3/properties/calls` (and `/groups`)
/// accepts: the calls-adjacent one of the spec's alternatives.
pub const CREATE_SCOPE: &str = "crm.schemas.contacts.write";
/// One of the scopes reading a property or group accepts, and the one
/// polling needs anyway.
pub const READ_SCOPE: &str = "crm.objects.contacts.read";

/// A property the bridge writes: created on first use when missing.
pub struct PropertySpec {
    pub name: &'static str,
    pub label: &'static str,
    /// `PropertyCreate.type`.
    pub kind: &'static str,
    /// `PropertyCreate.fieldType`.
    pub field_type: &'static str,
    pub description: &'static str,
}

/// The call properties the bridge writes, in the order they are created.
pub const PROPERTIES: [PropertySpec; 4] = [
    PropertySpec {
        name: "kendo_sent",
        label: "Kendo Sent",
        kind: "bool",
        field_type: "booleancheckbox",
        description: "Set by kendo-bridge when Kendo accepted this call.",
    },
    PropertySpec {
        name: "kendo_call_id",
        label: "Kendo Call ID",
        kind: "string",
        field_type: "text",
        description: "Kendo's callId for this call, set by kendo-bridge.",
    },
    PropertySpec {
        name: "kendo_ai_score",
        label: "Kendo AI Score",
        kind: "number",
        field_type: "number",
        description: "The AI score from Kendo's call.uploaded webhook, set by kendo-bridge.",
    },
    PropertySpec {
        name: "kendo_scored_at",
        label: "Kendo Scored At",
        kind: "datetime",
        field_type: "date",
        description: "When Kendo scored this call, set by kendo-bridge.",
    },
];

/// The HubSpot property values a write-back sets. HubSpot takes every
/// value as a string (`SimplePublicObjectInput.properties` is a map of
/// strings); a datetime as ISO 8601 or epoch milliseconds (calls guide,
/// `hs_timestamp`).
pub fn property_values(item: &WriteBackItem) -> Map<String, Value> {
    let mut props = Map::new();
    let f = &item.fields;
    if let Some(sent) = f.sent {
        props.insert("kendo_sent".into(), Value::String(sent.to_string()));
    }
    if let Some(id) = &f.call_id {
        props.insert("kendo_call_id".into(), Value::String(id.clone()));
    }
    if let Some(score) = f.ai_score {
        props.insert("kendo_ai_score".into(), Value::String(score.to_string()));
    }
    if let Some(at) = f.scored_at {
        props.insert("kendo_scored_at".into(), Value::String(timefmt::iso(at)));
    }
    props
}

/// What one pass over the due write-backs did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    pub written: u32,
    pub retried: u32,
    pub dead: u32,
    /// HubSpot refused the credential or a scope: everything waits.
    pub held: bool,
}

/// How one write-back went.
enum Attempt {
    Written,
    Retried,
    Dead,
    Held,
}

/// The HubSpot write-back worker. Cheap to clone.
#[derive(Clone)]
pub struct HubspotWriteBack {
    ctx: Context,
    api: SourceApi,
    backoff: Backoff,
    /// Whether this process has seen the group and every property exist.
    ensured: Arc<AtomicBool>,
}

impl HubspotWriteBack {
    /// None unless `[hubspot]` is enabled with `write_back = true`; an error
    /// when write-back is on without a token to write with.
    pub fn new(ctx: &Context) -> Result<Option<HubspotWriteBack>, SourceError> {
        let Some(cfg) = ctx
            .config
            .hubspot
            .as_ref()
            .filter(|c| c.enabled && c.write_back)
        else {
            return Ok(None);
        };
        let api = SourceApi::configured(
            SOURCE,
            &cfg.api_url,
            cfg.token.as_ref(),
            "hubspot.token",
            ctx,
        )?
        .ok_or_else(|| SourceError::Config {
            source_name: SOURCE,
            message: "`hubspot.write_back = true` needs `hubspot.token` (a private app token with crm.objects.contacts.write)".into(),
        })?
        // Every write-back request is spaced; HubSpot's burst limit counts
        // all of a token's requests together.
        .paced(RequestPacing::new(cfg.write_back_per_second.max(1), 1_000, |_| true))
        .with_attempts(1);
        let retry = &ctx.config.kendo.retry;
        Ok(Some(HubspotWriteBack {
            ctx: ctx.clone(),
            api,
            backoff: Backoff {
                base_ms: retry.base.as_millis() as Millis,
                cap_ms: retry.cap.as_millis() as Millis,
                max_attempts: cfg.write_back_attempts.max(1),
            },
            ensured: Arc::new(AtomicBool::new(false)),
        }))
    }

    /// Writes every write-back due now, one at a time, paced. Stops early
    /// when HubSpot refuses the credential or a scope (everything waits).
    pub async fn pass(&self) -> Result<Pass, SourceError> {
        let mut pass = Pass::default();
        loop {
            let now = self.ctx.clock.now_ms();
            let due = self
                .ctx
                .store
                .run(move |s| s.write_backs_due(now, 50))
                .await?;
            if due.is_empty() {
                return Ok(pass);
            }
            for item in due {
                let it = item.clone();
                let claimed = self
                    .ctx
                    .store
                    .run(move |s| s.claim_write_back(&it, CLAIM_LEASE_MS, now))
                    .await?;
                if !claimed {
                    continue;
                }
                match self.write(&item).await? {
                    Attempt::Written => pass.written += 1,
                    Attempt::Retried => pass.retried += 1,
                    Attempt::Dead => pass.dead += 1,
                    Attempt::Held => {
                        pass.held = true;
                        return Ok(pass);
                    }
                }
            }
        }
    }

    /// Runs passes until `shutdown` turns true: after each, sleeps until
    /// the next write-back is due (at most a second, so new ones are picked
    /// up quickly).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<(), SourceError> {
        loop {
            if let Err(e) = self.pass().await {
                // The store or the plugin failed; HubSpot's answers are
                // handled inside. Try again shortly rather than stop the
                // bridge over a write-back.
                tracing::warn!(error = %e, "hubspot write-back pass failed; will retry");
            }
            let now = self.ctx.clock.now_ms();
            let next = self
                .ctx
                .store
                .run(|s| s.next_write_back_at())
                .await
                .ok()
                .flatten()
                .unwrap_or(Millis::MAX);
            let wake = next.clamp(now + 50, now + 1_000);
            tokio::select! {
                _ = self.ctx.clock.sleep_until(wake) => {}
                _ = shutdown.wait_for(|s| *s) => return Ok(()),
            }
        }
    }

    /// Keeps passing until nothing is due within `wait` (for `sync` and the
    /// demo): a write-back retried later than that stays for the next run.
    pub async fn drain(&self, wait: Duration) -> Result<Pass, SourceError> {
        let horizon = self.ctx.clock.now_ms() + wait.as_millis() as Millis;
        let mut total = Pass::default();
        loop {
            let pass = self.pass().await?;
            total.written += pass.written;
            total.retried += pass.retried;
            total.dead += pass.dead;
            total.held |= pass.held;
            let next = self.ctx.store.run(|s| s.next_write_back_at()).await?;
            match next {
                Some(at) if at <= horizon && !pass.held => self.ctx.clock.sleep_until(at).await,
                _ => return Ok(total),
            }
        }
    }

    async fn write(&self, item: &WriteBackItem) -> Result<Attempt, SourceError> {
        if !self.ensured.load(Ordering::Acquire) {
            match self.ensure_properties().await {
                Ok(()) => self.ensured.store(true, Ordering::Release),
                Err(e) => return self.hold_all(item, &e).await,
            }
        }
        let props = property_values(item);
        let request = HttpRequest {
            method: "PATCH".into(),
            path: format!("/crm/v3/objects/calls/{}", encode_segment(&item.source_id)),
            headers: json_headers(),
            body: Some(json!({ "properties": props }).to_string()),
        };
        let now = self.ctx.clock.now_ms();
        match self.api.fetch(&request).await {
            Ok(Some(_)) => {
                let it = item.clone();
                self.ctx
                    .store
                    .run(move |s| s.write_back_done(&it, now))
                    .await?;
                self.ctx.health_ok(SOURCE, TOPIC).await?;
                tracing::debug!(source_id = %item.source_id, kind = %item.kind, "written back to hubspot");
                Ok(Attempt::Written)
            }
            Ok(None) => {
                self.dead(
                    item,
                    &format!(
                        "HubSpot call {} no longer exists (404 on PATCH): nothing to write to",
                        item.source_id
                    ),
                )
                .await
            }
            Err(e @ SourceError::Status { status, .. }) if status == 401 || status == 403 => {
                self.hold_all(item, &e).await
            }
            Err(e @ SourceError::Status { status: 400, .. })
                if e.to_string().contains("PROPERTY_DOESNT_EXIST") =>
            {
                // Someone deleted a property since it was made: make it
                // again before the next attempt.
                self.ensured.store(false, Ordering::Release);
                self.retry(item, &e.to_string()).await
            }
            Err(e) if e.is_transient() => self.retry(item, &e.to_string()).await,
            Err(e) => {
                let reason = e.to_string();
                self.ctx.health_problem(SOURCE, TOPIC, &reason).await?;
                self.dead(item, &reason).await
            }
        }
    }

    async fn retry(&self, item: &WriteBackItem, error: &str) -> Result<Attempt, SourceError> {
        let attempts = item.attempts + 1;
        let Some(delay) = self.backoff.delay(attempts, rand::random()) else {
            return self
                .dead(
                    item,
                    &format!("gave up after {attempts} attempts; last: {error}"),
                )
                .await;
        };
        let now = self.ctx.clock.now_ms();
        let (it, text) = (item.clone(), error.to_string());
        self.ctx
            .store
            .run(move |s| s.write_back_retry(&it, now + delay, &text, now))
            .await?;
        tracing::debug!(source_id = %item.source_id, attempts, delay_ms = delay, error, "hubspot write-back will be retried");
        Ok(Attempt::Retried)
    }

    async fn dead(&self, item: &WriteBackItem, reason: &str) -> Result<Attempt, SourceError> {
        let now = self.ctx.clock.now_ms();
        let (it, text) = (item.clone(), reason.to_string());
        self.ctx
            .store
            .run(move |s| s.write_back_dead(&it, &text, now))
            .await?;
        tracing::warn!(source_id = %item.source_id, kind = %item.kind, reason, "hubspot write-back given up");
        Ok(Attempt::Dead)
    }

    /// HubSpot refused something every write-back needs (the credential, a
    /// scope, or the properties could not be made): nothing is written until
    /// it is fixed, and no write-back spends an attempt meanwhile.
    async fn hold_all(
        &self,
        item: &WriteBackItem,
        error: &SourceError,
    ) -> Result<Attempt, SourceError> {
        let problem = match error {
            SourceError::Status {
                status: 403,
                method,
                path,
                ..
            } => {
                let scope = scope_for(method);
                format!(
                    "HubSpot refused {method} {path} (403): the private app's token lacks a scope; add `{scope}` \
                     in HubSpot under Settings > Integrations > Private Apps > your app > Scopes{}; \
                     write-backs wait and continue once it is granted",
                    if scope == CREATE_SCOPE {
                        " (HubSpot's properties API accepts it among other crm.schemas.*.write scopes; none is specific to calls)"
                    } else {
                        ""
                    }
                )
            }
            SourceError::Status { status: 401, .. } => {
                format!("{error}; write-backs wait until HubSpot accepts `hubspot.token` again")
            }
            _ => format!("{error}; write-backs wait and are tried again"),
        };
        self.ctx.health_problem(SOURCE, TOPIC, &problem).await?;
        // A refused credential or scope needs a person: wait the longest
        // back-off. Anything else (HubSpot failing while the properties were
        // made) is tried again sooner.
        let wait = if matches!(
            error,
            SourceError::Status {
                status: 401 | 403,
                ..
            }
        ) {
            self.backoff.cap_ms
        } else {
            self.backoff.ceiling(2)
        };
        let now = self.ctx.clock.now_ms();
        let it = item.clone();
        self.ctx
            .store
            .run(move |s| s.hold_write_backs(SOURCE, Some(&it), now + wait.max(1), &problem, now))
            .await?;
        Ok(Attempt::Held)
    }

    /// Makes the group and each property unless HubSpot already has them.
    async fn ensure_properties(&self) -> Result<(), SourceError> {
        let group = HttpRequest {
            method: "GET".into(),
            path: format!("/crm/v3/properties/calls/groups/{GROUP}"),
            headers: Vec::new(),
            body: None,
        };
        if self.api.fetch(&group).await?.is_none() {
            let create = HttpRequest {
                method: "POST".into(),
                path: "/crm/v3/properties/calls/groups".into(),
                headers: json_headers(),
                body: Some(
                    json!({"name": GROUP, "label": "Kendo", "displayOrder": -1}).to_string(),
                ),
            };
            self.create(&create).await?;
            tracing::info!(group = GROUP, "created the HubSpot call property group");
        }
        for spec in &PROPERTIES {
            let read = HttpRequest {
                method: "GET".into(),
                path: format!("/crm/v3/properties/calls/{}", spec.name),
                headers: Vec::new(),
                body: None,
            };
            if self.api.fetch(&read).await?.is_some() {
                continue;
            }
            let create = HttpRequest {
                method: "POST".into(),
                path: "/crm/v3/properties/calls".into(),
                headers: json_headers(),
                body: Some(property_create_body(spec).to_string()),
            };
            self.create(&create).await?;
            tracing::info!(property = spec.name, "created the HubSpot call property");
        }
        Ok(())
    }

    /// `doctor`'s check: reads (never writes) the group and properties
    /// the write-back uses. The write scopes cannot be checked without
    /// writing, so the detail names them.
    pub async fn doctor(&self) -> Vec<(String, Result<String, SourceError>)> {
        let mut missing = Vec::new();
        let mut outcome = Ok(());
        let group = HttpRequest {
            method: "GET".into(),
            path: format!("/crm/v3/properties/calls/groups/{GROUP}"),
            headers: Vec::new(),
            body: None,
        };
        match self.api.fetch(&group).await {
            Ok(Some(_)) => {}
            Ok(None) => missing.push(format!("group `{GROUP}`")),
            Err(e) => outcome = Err(e),
        }
        for spec in &PROPERTIES {
            if outcome.is_err() {
                break;
            }
            let read = HttpRequest {
                method: "GET".into(),
                path: format!("/crm/v3/properties/calls/{}", spec.name),
                headers: Vec::new(),
                body: None,
            };
            match self.api.fetch(&read).await {
                Ok(Some(_)) => {}
                Ok(None) => missing.push(format!("`{}`", spec.name)),
                Err(e) => outcome = Err(e),
            }
        }
        let detail = outcome.map(|()| {
            let writes = format!(
                "writing needs `{PATCH_SCOPE}`, which cannot be checked without writing"
            );
            if missing.is_empty() {
                format!("the Kendo properties exist; {writes}")
            } else {
                format!(
                    "not yet in HubSpot: {}; the first write-back creates them (needs `{CREATE_SCOPE}`); {writes}",
                    missing.join(", ")
                )
            }
        });
        vec![(
            format!("hubspot write-back properties (read: scope {READ_SCOPE})"),
            detail,
        )]
    }

    /// A create whose 409 (made meanwhile, by another bridge or a person)
    /// is as good as a 201.
    async fn create(&self, request: &HttpRequest) -> Result<(), SourceError> {
        match self.api.fetch(request).await {
            Ok(_) | Err(SourceError::Status { status: 409, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The scope HubSpot's specs give for the write-back's requests by method:
/// PATCH of a call, POST of a property or group, GET of either.
fn scope_for(method: &str) -> &'static str {
    match method {
        "PATCH" => PATCH_SCOPE,
        "POST" => CREATE_SCOPE,
        _ => READ_SCOPE,
    }
}

/// `PropertyCreate` for one of the bridge's properties. A bool property
/// carries its two options (`OptionInput` requires `label`, `value`,
/// `hidden`).
pub fn property_create_body(spec: &PropertySpec) -> Value {
    let mut body = json!({
        "name": spec.name,
        "label": spec.label,
        "type": spec.kind,
        "fieldType": spec.field_type,
        "groupName": GROUP,
        "description": spec.description,
    });
    if spec.kind == "bool" {
        body["options"] = json!([
            {"label": "Yes", "value": "true", "hidden": false, "displayOrder": 1},
            {"label": "No", "value": "false", "hidden": false, "displayOrder": 2},
        ]);
    }
    body
}

fn json_headers() -> Vec<Header> {
    vec![Header {
        name: "Content-Type".into(),
        value: "application/json".into(),
    }]
}

/// A call id as one path segment: HubSpot's ids are digits, but a record
/// id from elsewhere must not change the path.
fn encode_segment(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::WriteBackFields;

    fn item(fields: WriteBackFields) -> WriteBackItem {
        WriteBackItem {
            id: 1,
            source: SOURCE.into(),
            source_id: "512".into(),
            kind: "sent".into(),
            fields,
            attempts: 0,
        }
    }

    #[test]
    fn a_sent_write_back_sets_kendo_sent_and_the_call_id_as_strings() {
        let props = property_values(&item(WriteBackFields {
            sent: Some(true),
            call_id: Some("call_abc".into()),
            ..WriteBackFields::default()
        }));
        assert_eq!(
            Value::Object(props),
            json!({"kendo_sent": "true", "kendo_call_id": "call_abc"})
        );
    }

    #[test]
    fn a_score_write_back_sets_the_score_and_an_iso_time() {
        let props = property_values(&item(WriteBackFields {
            ai_score: Some(82.5),
            scored_at: Some(1_776_871_800_000),
            ..WriteBackFields::default()
        }));
        assert_eq!(
            Value::Object(props),
            json!({"kendo_ai_score": "82.5", "kendo_scored_at": "2026-04-22T15:30:00Z"})
        );
    }

    #[test]
    fn the_bool_property_is_created_with_its_two_options_in_the_kendo_group() {
        let body = property_create_body(&PROPERTIES[0]);
        assert_eq!(body["groupName"], GROUP);
        assert_eq!(body["type"], "bool");
        assert_eq!(body["options"][0]["value"], "true");
        assert!(
            property_create_body(&PROPERTIES[1])
                .get("options")
                .is_none()
        );
    }

    #[test]
    fn an_id_is_one_path_segment() {
        assert_eq!(encode_segment("512"), "512");
        assert_eq!(encode_segment("a/b?c"), "a%2Fb%3Fc");
    }
}
