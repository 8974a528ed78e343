//! HubSpot write-back, the workflow: after Kendo's 201 the call gets
//! `Kendo Sent` and `Kendo Call ID`; after Kendo's score webhook, `Kendo AI
//! Score` and `Kendo Scored At`. With `Kendo Sent` on every call the bridge
//! delivered, a HubSpot workflow can enrol only calls where it is not true,
//! the idempotency guard Kendo's HubSpot guide recommends.
//!
//! The rows are the ledger's ([`crate::ledger::write_back`]). This module
//! says which requests make the properties exist ([`Ensure`]), the write
//! itself ([`patch`]), and what each answer means ([`after_write`],
//! [`after_ensure`]): a failure is retried with the project's back-off and
//! given up after a bounded number of attempts; a refused credential or
//! scope holds every write-back (no attempt spent) and names the scope to
//! add. The drivers make the requests and carry the actions out.
//!
//! The requests are fixed property writes with no record to interpret, so
//! they are planned here rather than by the plugin. HubSpot API facts
//! (HubSpot's OpenAPI specs, repo HubSpot/HubSpot-public-api-spec-collection
//! @ 99893791383254f5, `PublicApiSpecs/CRM/`):
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

use serde_json::{Map, Value, json};

use crate::Millis;
use crate::ledger::write_back::{self as ledger, WriteBackFields, WriteBackItem};
use crate::ledger::{LedgerError, health};
use crate::pacing::Backoff;

/// The ledger's name for the source written to.
pub const SOURCE: &str = "hubspot";
/// The `source_health` topic `status` shows write-back problems under.
pub const TOPIC: &str = "write-back";
/// How long a claimed write-back is not due to anyone else: longer than an
/// attempt can take (a client's 30 s timeout, plus pacing).
pub const CLAIM_LEASE_MS: Millis = 120_000;
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

/// A request the driver makes against HubSpot's API, with the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: &'static str,
    pub path: String,
    /// A JSON body (sent with `Content-Type: application/json`).
    pub body: Option<String>,
}

impl Request {
    /// The `Content-Type` header's value: JSON when there is a body.
    pub fn content_type(&self) -> Option<&'static str> {
        self.body.as_ref().map(|_| "application/json")
    }

    fn get(path: String) -> Request {
        Request {
            method: "GET",
            path,
            body: None,
        }
    }

    fn send(method: &'static str, path: String, body: Value) -> Request {
        Request {
            method,
            path,
            body: Some(body.to_string()),
        }
    }
}

/// The HubSpot property values a write-back sets. HubSpot takes every
/// value as a string (`SimplePublicObjectInput.properties` is a map of
/// strings); a datetime as epoch milliseconds, the form HubSpot's "How
/// should timestamps be formatted for HubSpot's APIs?" documents for every
/// endpoint ("any valid millisecond timestamp" for a datetime property).
pub fn property_values(fields: &WriteBackFields) -> Map<String, Value> {
    let mut props = Map::new();
    if let Some(sent) = fields.sent {
        props.insert("kendo_sent".into(), Value::String(sent.to_string()));
    }
    if let Some(id) = &fields.call_id {
        props.insert("kendo_call_id".into(), Value::String(id.clone()));
    }
    if let Some(score) = fields.ai_score {
        props.insert("kendo_ai_score".into(), Value::String(score.to_string()));
    }
    if let Some(at) = fields.scored_at {
        props.insert("kendo_scored_at".into(), Value::String(at.to_string()));
    }
    props
}

/// What is wrong with a property HubSpot already has under one of the
/// bridge's names (`body`: `GET /crm/v3/properties/calls/{name}`'s
/// `Property`), and what to do: a value written to a property of another
/// type is refused or misread (an epoch-milliseconds time in a text
/// property is a number to people and to workflows). None when it has the
/// type and field type the bridge would create, or when the body does not
/// say (the write then shows what HubSpot thinks).
pub fn property_problem(spec: &PropertySpec, body: &str) -> Option<String> {
    let value: Value = serde_json::from_str(body).ok()?;
    let kind = value.get("type").and_then(Value::as_str);
    let field_type = value.get("fieldType").and_then(Value::as_str);
    if kind.is_none() && field_type.is_none() {
        return None;
    }
    if kind == Some(spec.kind) && field_type == Some(spec.field_type) {
        return None;
    }
    Some(format!(
        "HubSpot's call property `{name}` exists with type `{kind}` and field type `{field}`, \
         but the bridge writes it as type `{want_kind}`, field type `{want_field}`: delete (or \
         rename) `{name}` among HubSpot's call properties and the bridge creates it with the \
         right type on its next write-back (or create it yourself as `{want_kind}` / \
         `{want_field}` in group `{GROUP}`); write-backs wait until then",
        name = spec.name,
        kind = kind.unwrap_or("?"),
        field = field_type.unwrap_or("?"),
        want_kind = spec.kind,
        want_field = spec.field_type,
    ))
}

/// A property of the bridge's exists with another type: nothing is written
/// until a person fixes it (the longest back-off, no attempt spent), and
/// `problem` ([`property_problem`]) is shown in `status`.
pub fn after_mismatch(problem: String, backoff: &Backoff, now: Millis) -> WriteAction {
    WriteAction::HoldAll {
        until: now + backoff.cap_ms.max(1),
        problem,
    }
}

/// The write of one write-back: its values on the call.
pub fn patch(item: &WriteBackItem) -> Request {
    Request::send(
        "PATCH",
        format!("/crm/v3/objects/calls/{}", encode_segment(&item.source_id)),
        json!({ "properties": property_values(&item.fields) }),
    )
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

/// A call id as one path segment: HubSpot's ids are digits, but a record
/// id from elsewhere must not change the path.
pub fn encode_segment(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What to do next to make the group and every property exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnsureNeed {
    /// Read it: a 2xx means it exists ([`Ensure::read`] with `true`), a
    /// 404 that it does not.
    Read(Request),
    /// Create it: a 2xx or a 409 (made meanwhile, by another bridge or a
    /// person) is done ([`Ensure::created`]).
    Create(Request),
    /// Everything exists.
    Done,
}

/// Making the group and each property exist unless HubSpot already has
/// them: the group first, then each property in [`PROPERTIES`]' order.
#[derive(Debug, Clone, Default)]
pub struct Ensure {
    /// 0 is the group, `n` the property `n - 1`.
    step: usize,
    /// The current step's read found it missing.
    missing: bool,
}

impl Ensure {
    pub fn new() -> Ensure {
        Ensure::default()
    }

    /// The next request, or done.
    pub fn next(&self) -> EnsureNeed {
        if self.step == 0 {
            return if self.missing {
                EnsureNeed::Create(Request::send(
                    "POST",
                    "/crm/v3/properties/calls/groups".into(),
                    json!({"name": GROUP, "label": "Kendo", "displayOrder": -1}),
                ))
            } else {
                EnsureNeed::Read(Request::get(format!(
                    "/crm/v3/properties/calls/groups/{GROUP}"
                )))
            };
        }
        let Some(spec) = PROPERTIES.get(self.step - 1) else {
            return EnsureNeed::Done;
        };
        if self.missing {
            EnsureNeed::Create(Request::send(
                "POST",
                "/crm/v3/properties/calls".into(),
                property_create_body(spec),
            ))
        } else {
            EnsureNeed::Read(Request::get(format!(
                "/crm/v3/properties/calls/{}",
                spec.name
            )))
        }
    }

    /// The read's answer: it exists, or not.
    pub fn read(&mut self, exists: bool) {
        if exists {
            self.step += 1;
        } else {
            self.missing = true;
        }
    }

    /// The read found it, with `body`: as [`Ensure::read`] with `true`,
    /// unless it is one of the bridge's properties with another type; then
    /// the problem ([`property_problem`]) and the step stays.
    pub fn found(&mut self, body: &str) -> Result<(), String> {
        if let Some(spec) = self.step.checked_sub(1).and_then(|i| PROPERTIES.get(i))
            && let Some(problem) = property_problem(spec, body)
        {
            return Err(problem);
        }
        self.read(true);
        Ok(())
    }

    /// The create succeeded (or answered 409).
    pub fn created(&mut self) {
        self.missing = false;
        self.step += 1;
    }
}

/// A request that failed: HubSpot's status, if it answered, and the error
/// as the driver tells it (HubSpot's error body included: a deleted
/// property shows there as `PROPERTY_DOESNT_EXIST`).
#[derive(Debug, Clone, Copy)]
pub struct Failure<'a> {
    pub status: Option<u16>,
    /// Worth trying again: no answer, a 429, a 5xx ([`super::passing`]).
    pub passing: bool,
    pub method: &'a str,
    pub path: &'a str,
    pub message: &'a str,
}

/// What a write's answer means.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteAction {
    /// Written: the row is done, the topic healthy.
    Done,
    /// Try again at `at`; with `remake_properties`, make the properties
    /// exist first (someone deleted one).
    Retry {
        at: Millis,
        error: String,
        remake_properties: bool,
    },
    /// Given up, with the reason; with `health_problem`, shown in `status`.
    Dead {
        reason: String,
        health_problem: bool,
    },
    /// Every pending write-back of the source waits until `until`, no
    /// attempt spent; `problem` is shown in `status`.
    HoldAll { until: Millis, problem: String },
}

/// What the answer to [`patch`] means. `Ok(false)` is a 404: the call is
/// gone. `unit` is a random number in [0, 1) for the back-off's jitter.
pub fn after_write(
    item: &WriteBackItem,
    answer: Result<bool, Failure<'_>>,
    backoff: &Backoff,
    now: Millis,
    unit: f64,
) -> WriteAction {
    let failure = match answer {
        Ok(true) => return WriteAction::Done,
        Ok(false) => {
            return WriteAction::Dead {
                reason: format!(
                    "HubSpot call {} no longer exists (404 on PATCH): nothing to write to",
                    item.source_id
                ),
                health_problem: false,
            };
        }
        Err(failure) => failure,
    };
    match failure.status {
        Some(401 | 403) => after_ensure(failure, backoff, now),
        // Someone deleted a property since it was made: make it again
        // before the next attempt.
        Some(400) if failure.message.contains("PROPERTY_DOESNT_EXIST") => {
            retry(item, failure.message, true, backoff, now, unit)
        }
        _ if failure.passing => retry(item, failure.message, false, backoff, now, unit),
        _ => WriteAction::Dead {
            reason: failure.message.to_string(),
            health_problem: true,
        },
    }
}

fn retry(
    item: &WriteBackItem,
    error: &str,
    remake_properties: bool,
    backoff: &Backoff,
    now: Millis,
    unit: f64,
) -> WriteAction {
    let attempts = item.attempts + 1;
    match backoff.delay(attempts, unit) {
        Some(delay) => WriteAction::Retry {
            at: now + delay,
            error: error.to_string(),
            remake_properties,
        },
        None => WriteAction::Dead {
            reason: format!("gave up after {attempts} attempts; last: {error}"),
            health_problem: false,
        },
    }
}

/// HubSpot refused something every write-back needs (the credential, a
/// scope), or the properties could not be made: nothing is written until it
/// is fixed, and no write-back spends an attempt meanwhile. A refused
/// credential or scope needs a person: it waits the longest back-off;
/// anything else is tried again sooner.
pub fn after_ensure(failure: Failure<'_>, backoff: &Backoff, now: Millis) -> WriteAction {
    let (problem, wait) = match failure.status {
        Some(403) => {
            let scope = scope_for(failure.method);
            (
                format!(
                    "HubSpot refused {} {} (403): the private app's token lacks a scope; add `{scope}` \
                     in HubSpot under Settings > Integrations > Private Apps > your app > Scopes{}; \
                     write-backs wait and continue once it is granted",
                    failure.method,
                    failure.path,
                    if scope == CREATE_SCOPE {
                        " (HubSpot's properties API accepts it among other crm.schemas.*.write scopes; none is specific to calls)"
                    } else {
                        ""
                    }
                ),
                backoff.cap_ms,
            )
        }
        Some(401) => (
            format!(
                "{}; write-backs wait until HubSpot accepts the token again",
                failure.message
            ),
            backoff.cap_ms,
        ),
        _ => (
            format!("{}; write-backs wait and are tried again", failure.message),
            backoff.ceiling(2),
        ),
    };
    WriteAction::HoldAll {
        until: now + wait.max(1),
        problem,
    }
}

/// The scope HubSpot's specs give for the write-back's requests by method:
/// PATCH of a call, POST of a property or group, GET of either.
pub fn scope_for(method: &str) -> &'static str {
    match method {
        "PATCH" => PATCH_SCOPE,
        "POST" => CREATE_SCOPE,
        _ => READ_SCOPE,
    }
}

/// What one pass of write-backs did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Pass {
    pub written: u32,
    pub retried: u32,
    pub dead: u32,
    /// HubSpot refused the token or a scope, or a property has another
    /// type: every write-back waits.
    pub held: bool,
    /// Given up: `(call id, why)`, for the driver's log.
    #[serde(skip)]
    pub given_up: Vec<(String, String)>,
}

impl Pass {
    pub fn add(&mut self, other: Pass) {
        self.written += other.written;
        self.retried += other.retried;
        self.dead += other.dead;
        self.held |= other.held;
        self.given_up.extend(other.given_up);
    }
}

/// HubSpot's API for the write-backs: requests the core plans, made by the
/// driver (credentials, pacing), and what a failed one says.
pub trait WriteBackApi: crate::ports::Ports {
    type Error;

    fn write(
        &self,
        request: Request,
    ) -> impl std::future::Future<Output = Result<Option<String>, Self::Error>>;

    /// A failed request as [`after_write`] and [`after_ensure`] read it.
    fn failure<T>(&self, error: &Self::Error, f: impl FnOnce(Failure<'_>) -> T) -> T;

    /// A uniform number in [0, 1), the back-off's jitter.
    fn jitter(&self) -> f64;
}

/// One pass: up to `limit` write-backs due now, each claimed under a lease
/// (so instances never write the same one twice at once); the properties
/// made first unless `ensured` says they exist (kept across passes by the
/// caller); each answer carried out as the core says it means. Stops early
/// when HubSpot refuses the token or a scope: everything waits.
pub async fn pass<P: WriteBackApi>(
    ports: &P,
    backoff: &Backoff,
    limit: u32,
    ensured: &std::sync::atomic::AtomicBool,
) -> Result<Pass, LedgerError> {
    use std::sync::atomic::Ordering;
    let db = ports.db();
    let mut pass = Pass::default();
    for item in ledger::due(db, ports.now(), limit)? {
        let now = ports.now();
        if !ledger::claim(db, &item, CLAIM_LEASE_MS, now)? {
            continue;
        }
        let action = if ensured.load(Ordering::Acquire) {
            None
        } else {
            match ensure(ports).await {
                Ok(None) => {
                    ensured.store(true, Ordering::Release);
                    None
                }
                // A `kendo_*` property made by hand with another type: a
                // person must fix it; every write-back waits.
                Ok(Some(problem)) => Some(after_mismatch(problem, backoff, now)),
                Err(e) => Some(ports.failure(&e, |f| after_ensure(f, backoff, now))),
            }
        };
        let action = match action {
            Some(action) => action,
            None => match ports.write(patch(&item)).await {
                Ok(body) => after_write(&item, Ok(body.is_some()), backoff, now, ports.jitter()),
                Err(e) => ports.failure(&e, |f| {
                    after_write(&item, Err(f), backoff, now, ports.jitter())
                }),
            },
        };
        let now = ports.now();
        match action {
            WriteAction::Done => {
                ledger::done(db, &item, now)?;
                health::ok(db, SOURCE, TOPIC, now)?;
                pass.written += 1;
            }
            WriteAction::Retry {
                at,
                error,
                remake_properties,
            } => {
                if remake_properties {
                    ensured.store(false, Ordering::Release);
                }
                ledger::retry(db, &item, at, &error, now)?;
                pass.retried += 1;
            }
            WriteAction::Dead {
                reason,
                health_problem,
            } => {
                if health_problem {
                    health::problem(db, SOURCE, TOPIC, &reason, now)?;
                }
                ledger::dead(db, &item, &reason, now)?;
                pass.dead += 1;
                pass.given_up.push((item.source_id.clone(), reason));
            }
            WriteAction::HoldAll { until, problem } => {
                health::problem(db, SOURCE, TOPIC, &problem, now)?;
                ledger::hold(db, SOURCE, Some(&item), until, &problem, now)?;
                pass.held = true;
                break;
            }
        }
    }
    Ok(pass)
}

/// Makes the group and each property unless HubSpot already has them, in
/// the order [`Ensure`] asks; a create's 409 (made meanwhile, by another
/// bridge or a person) is as good as its 201. `Some(problem)` when one
/// exists with another type or field type ([`property_problem`]).
async fn ensure<P: WriteBackApi>(ports: &P) -> Result<Option<String>, P::Error> {
    let mut ensure = Ensure::new();
    loop {
        match ensure.next() {
            EnsureNeed::Done => return Ok(None),
            EnsureNeed::Read(request) => match ports.write(request).await? {
                Some(body) => {
                    if let Err(problem) = ensure.found(&body) {
                        return Ok(Some(problem));
                    }
                }
                None => ensure.read(false),
            },
            EnsureNeed::Create(request) => match ports.write(request).await {
                Ok(_) => ensure.created(),
                Err(e) if ports.failure(&e, |f| f.status) == Some(409) => ensure.created(),
                Err(e) => return Err(e),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    const BACKOFF: Backoff = Backoff {
        base_ms: 1_000,
        cap_ms: 60_000,
        max_attempts: 3,
    };

    fn failure(status: Option<u16>, passing: bool, message: &str) -> Failure<'_> {
        Failure {
            status,
            passing,
            method: "PATCH",
            path: "/crm/v3/objects/calls/512",
            message,
        }
    }

    #[test]
    fn a_sent_write_back_sets_kendo_sent_and_the_call_id_as_strings() {
        let props = property_values(&WriteBackFields {
            sent: Some(true),
            call_id: Some("call_abc".into()),
            ..WriteBackFields::default()
        });
        assert_eq!(
            Value::Object(props),
            json!({"kendo_sent": "true", "kendo_call_id": "call_abc"})
        );
    }

    #[test]
    fn a_score_write_back_sets_the_score_and_the_time_in_epoch_milliseconds() {
        let props = property_values(&WriteBackFields {
            ai_score: Some(82.5),
            scored_at: Some(1_776_871_800_000),
            ..WriteBackFields::default()
        });
        assert_eq!(
            Value::Object(props),
            json!({"kendo_ai_score": "82.5", "kendo_scored_at": "1776871800000"})
        );
    }

    #[test]
    fn a_property_made_by_hand_with_another_type_is_a_named_problem() {
        let scored_at = &PROPERTIES[3];
        let by_hand = json!({"name": "kendo_scored_at", "type": "string", "fieldType": "text"});
        let problem = property_problem(scored_at, &by_hand.to_string()).unwrap_or_default();
        assert!(problem.contains("`kendo_scored_at`"), "{problem}");
        assert!(problem.contains("type `string`"), "{problem}");
        assert!(problem.contains("`datetime`"), "{problem}");
        let right = json!({"name": "kendo_scored_at", "type": "datetime", "fieldType": "date"});
        assert_eq!(property_problem(scored_at, &right.to_string()), None);
    }

    #[test]
    fn ensuring_stops_at_a_property_of_another_type() {
        let mut ensure = Ensure::new();
        assert_eq!(ensure.found("{}"), Ok(()));
        let wrong = json!({"type": "string", "fieldType": "text"}).to_string();
        // kendo_sent is a bool.
        assert!(ensure.found(&wrong).is_err());
        assert!(matches!(ensure.next(), EnsureNeed::Read(r) if r.path.ends_with("kendo_sent")));
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
        assert_eq!(
            patch(&item(WriteBackFields::default())).path,
            "/crm/v3/objects/calls/512"
        );
    }

    #[test]
    fn ensuring_reads_the_group_then_each_property_and_creates_only_what_is_missing() {
        let mut ensure = Ensure::new();
        let mut seen = Vec::new();
        loop {
            match ensure.next() {
                EnsureNeed::Read(r) => {
                    seen.push(format!("GET {}", r.path));
                    // The group and the score property are missing.
                    let missing =
                        r.path.ends_with("/groups/kendo") || r.path.ends_with("kendo_ai_score");
                    ensure.read(!missing);
                }
                EnsureNeed::Create(r) => {
                    seen.push(format!("POST {}", r.path));
                    ensure.created();
                }
                EnsureNeed::Done => break,
            }
        }
        assert_eq!(
            seen,
            [
                "GET /crm/v3/properties/calls/groups/kendo",
                "POST /crm/v3/properties/calls/groups",
                "GET /crm/v3/properties/calls/kendo_sent",
                "GET /crm/v3/properties/calls/kendo_call_id",
                "GET /crm/v3/properties/calls/kendo_ai_score",
                "POST /crm/v3/properties/calls",
                "GET /crm/v3/properties/calls/kendo_scored_at",
            ]
        );
    }

    #[test]
    fn a_written_call_is_done_and_a_gone_call_is_dead_without_a_health_problem() {
        let it = item(WriteBackFields::default());
        assert_eq!(
            after_write(&it, Ok(true), &BACKOFF, 0, 0.5),
            WriteAction::Done
        );
        assert!(matches!(
            after_write(&it, Ok(false), &BACKOFF, 0, 0.5),
            WriteAction::Dead {
                health_problem: false,
                ..
            }
        ));
    }

    #[test]
    fn a_missing_scope_holds_every_write_back_for_the_longest_back_off_and_names_the_scope() {
        let it = item(WriteBackFields::default());
        match after_write(
            &it,
            Err(failure(Some(403), false, "403")),
            &BACKOFF,
            10,
            0.5,
        ) {
            WriteAction::HoldAll { until, problem } => {
                assert_eq!(until, 10 + 60_000);
                assert!(problem.contains(PATCH_SCOPE), "{problem}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_passing_failure_is_retried_until_the_attempts_run_out() {
        let mut it = item(WriteBackFields::default());
        assert!(matches!(
            after_write(&it, Err(failure(Some(503), true, "503")), &BACKOFF, 0, 0.5),
            WriteAction::Retry {
                remake_properties: false,
                ..
            }
        ));
        it.attempts = 2;
        assert!(matches!(
            after_write(&it, Err(failure(Some(503), true, "503")), &BACKOFF, 0, 0.5),
            WriteAction::Dead {
                health_problem: false,
                ..
            }
        ));
    }

    #[test]
    fn a_deleted_property_is_made_again_before_the_retry() {
        let it = item(WriteBackFields::default());
        assert!(matches!(
            after_write(
                &it,
                Err(failure(Some(400), false, "400 PROPERTY_DOESNT_EXIST")),
                &BACKOFF,
                0,
                0.5
            ),
            WriteAction::Retry {
                remake_properties: true,
                ..
            }
        ));
    }

    #[test]
    fn a_lasting_refusal_is_dead_and_shown_as_a_health_problem() {
        let it = item(WriteBackFields::default());
        assert!(matches!(
            after_write(
                &it,
                Err(failure(Some(400), false, "400 bad")),
                &BACKOFF,
                0,
                0.5
            ),
            WriteAction::Dead {
                health_problem: true,
                ..
            }
        ));
    }
}
