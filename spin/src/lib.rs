//! kendo-bridge on Spin: the core's second driver (the host is the first).
//!
//! The same plugin component as the `kendo-bridge` host (its interfaces are
//! imported here; Spin plugs the component in from spin.toml's
//! `[component.bridge.dependencies]`). Every rule of a call's life is the
//! core crate's (`kendo_bridge_core`): the ledger (intake once, claims
//! under a lease and the key's pacing across instances, what Kendo's
//! answer means, recovery, the inbox, Aloware's held parts, Kendo's
//! results, source health) on Spin's SQLite in the host's schema
//! (`delivery.rs` runs its statements), and the HubSpot call read
//! (`hubspot.rs`). This app verifies, has the plugin map, makes the
//! requests, and answers.
//!
//! Every Aloware, Salesloft and HubSpot delivery is kept in the shared
//! inbox before it is processed, so a delivery is never lost to a failure
//! (Aloware never sends one twice). `POST /tick` (for a cron) processes
//! deliveries due again, polls HubSpot when asked, and sends what is due.
//!
//! HubSpot write-backs (`write_back.rs`) are queued in the transaction of
//! their cause and written on `POST /tick`.
//!
//! A tick's requests are capped (the core's `Policy::tick`: Salesloft's
//! calls and records, transcripts started, HubSpot pages, twenty
//! write-backs) instead of paced over the minute. The operator commands
//! (`replay`, `settle`, `redecide`) are the `kendo-bridge` binary's, run
//! against the same database.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};

mod aloware;
mod delivery;
mod hubspot;
mod inbox;
mod kendo_request;
mod log;
mod plugin_port;
mod policy;
mod salesloft;
mod source_http;
mod write_back;

use delivery::Db;
use kendo_bridge_core::answer::{Action, Answer, RejectionKind};
use kendo_bridge_core::due;
use kendo_bridge_core::ledger::LedgerError;
use kendo_bridge_core::ledger::inbox::{self as stored, InboxEntry, InboxInsert};
use kendo_bridge_core::ledger::results;
use kendo_bridge_core::ledger::send::{self, SendPacing};
use kendo_bridge_core::ledger::{State, report};
use spin_sdk::http::{
    Fields, IncomingRequest, Method, OutgoingResponse, Request, Response, ResponseOutparam,
};

use spin_sdk::http_component;

/// The plugin's interfaces, imported: the plugin component is composed in
/// by Spin (spin.toml `dependencies`), not linked into this crate.
mod plugin {
    wit_bindgen::generate!({
        path: ["../wit", "wit"],
        world: "kendo:bridge-spin/spin-app",
        generate_all,
    });
}

use plugin::kendo::bridge::kendo::{self as kendo_api, IngestOutcome};
use plugin::kendo::bridge::signatures::{self as signatures_api, Scheme, SignedRequest};
use plugin::kendo::bridge::types::{Header, RepEntry, Rules};

/// What a route answers, and the stored delivery it leaves to process once
/// the answer has gone: the sender waits for the commit, never for the
/// processing (source reads, the plugin, Kendo's pacing).
pub(crate) struct Reply {
    response: Response,
    then: Option<After>,
}

impl From<Response> for Reply {
    fn from(response: Response) -> Reply {
        Reply {
            response,
            then: None,
        }
    }
}

#[http_component]
async fn handle(incoming: IncomingRequest, out: ResponseOutparam) {
    let req = match read_request(incoming).await {
        Ok(req) => req,
        Err(refused) => return answer(out, refused).await,
    };
    let reply = match route(&req).await {
        Ok(reply) => reply,
        Err(e) => {
            log::line(
                "error",
                &[("route", req.path()), ("error", &format!("{e:#}"))],
            );
            Reply::from(json(
                500,
                serde_json::json!({ "error": format!("{e:#}") }).to_string(),
            ))
        }
    };
    answer(out, reply.response).await;
    if let Some(after) = reply.then {
        when_answered(after).await;
    }
}

async fn route(req: &Request) -> Result<Reply> {
    let method = req.method().clone();
    Ok(match (method, req.path()) {
        (Method::Get, "/healthz") => json(200, r#"{"status":"ok"}"#).into(),
        (Method::Get, "/status") => status()?.into(),
        (Method::Get, "/") => page().into(),
        (Method::Get, "/page.js") => Response::builder()
            .status(200)
            .header("content-type", "text/javascript; charset=utf-8")
            .body(include_str!("page/status.js"))
            .build()
            .into(),
        (Method::Post, "/tick" | "/drain") => tick(req).await?.into(),
        (Method::Post, "/webhooks/aloware") => aloware(req).await?,
        (Method::Post, "/webhooks/salesloft") => salesloft(req).await?,
        (Method::Post, "/webhooks/hubspot") => hubspot::webhook(req).await?,
        (Method::Post, "/webhooks/kendo") => kendo(req).await?,
        _ => json(404, r#"{"error":"no such route"}"#).into(),
    })
}

/// The request with its body, read only up to `max_body_bytes`: a larger
/// declared length is refused before a byte of the body is read, and a
/// body that turns out larger (chunked) as soon as it passes the limit, so
/// an oversize body never fills the instance's memory or the inbox.
async fn read_request(incoming: IncomingRequest) -> Result<Request, Response> {
    use futures::StreamExt as _;
    // Read only for a request with a body: a variable costs a trip to the
    // host, and most GETs have none.
    let limit = std::cell::OnceCell::new();
    let limit = || *limit.get_or_init(policy::max_webhook_body);
    let too_large = || {
        let limit = limit();
        log::line("refused", &[("why", "body over max_body_bytes")]);
        json(
            413,
            serde_json::json!({ "error": format!("the body is larger than max_body_bytes ({limit} bytes)") })
                .to_string(),
        )
    };
    let headers = incoming.headers();
    let declared = headers
        .get("content-length")
        .first()
        .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit()) {
        return Err(too_large());
    }
    let (method, uri) = (incoming.method(), incoming.uri());
    let mut body = Vec::new();
    let mut stream = incoming.into_body_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            json(
                400,
                serde_json::json!({ "error": format!("the body could not be read: {}", e.to_debug_string()) })
                    .to_string(),
            )
        })?;
        if (body.len() + chunk.len()) as u64 > limit() {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Request::builder()
        .method(method)
        .uri(uri)
        .headers(headers)
        .body(body)
        .build())
}

/// Sends `response` with its length.
async fn answer(out: ResponseOutparam, response: Response) {
    let body = response.body().to_vec();
    let mut fields: Vec<(String, Vec<u8>)> = response
        .headers()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("content-length"))
        .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
        .collect();
    fields.push(("content-length".into(), body.len().to_string().into_bytes()));
    let outgoing = match Fields::from_list(&fields) {
        Ok(fields) => OutgoingResponse::new(fields),
        Err(e) => {
            log::line("error", &[("answer", &format!("{e:?}"))]);
            OutgoingResponse::new(Fields::new())
        }
    };
    let _ = outgoing.set_status_code(*response.status());
    if let Err(e) = out.set_with_body(outgoing, body).await {
        log::line("error", &[("answer", &format!("{e:?}"))]);
    }
}

/// Where the app's calls stand: the ledger's states (shared with every
/// instance), deliveries kept unread and Kendo results stored, whether the
/// key is paused, each source part's current problem, and the write-backs.
/// No secret, no payload.
fn status() -> Result<Response> {
    let db = Db::open()?;
    // The core's one report (`ledger::report::status`), the one every status reads.
    let options = report::StatusOptions {
        teams: vec![delivery::TEAM.to_string()],
        troubled: 50,
        ..report::StatusOptions::default()
    };
    let status = report::status(&db, now_ms() as i64, &options)?;
    let calls: serde_json::Map<String, serde_json::Value> = State::ALL
        .into_iter()
        .map(|state| {
            (
                state.as_str().to_string(),
                serde_json::json!(status.calls(state)),
            )
        })
        .collect();
    let queued = status.calls(State::Queued);
    let paused = status
        .teams
        .iter()
        .find(|t| t.team() == delivery::TEAM)
        .and_then(|t| t.paused.as_ref())
        .map(|p| p.reason.clone());
    let unreadable = report::unreadable_deliveries(&db)?;
    let results = results::count(&db)?;
    // What needs a person: each source part's current problem (a refused
    // token, a missing scope), and the write-backs by state.
    let problems: Vec<serde_json::Value> = status
        .health
        .into_iter()
        .filter_map(|h| {
            let problem = h.problem?;
            Some(serde_json::json!({
                "source": h.source, "topic": h.topic, "problem": problem,
                "since": h.problem_since,
            }))
        })
        .collect();
    // Stored deliveries failing, or stopping (a trap) or hanging whatever
    // processes them: shown from the first failure, each a problem too.
    let troubled = status.troubled;
    let problems: Vec<serde_json::Value> = problems
        .into_iter()
        .chain(troubled.iter().map(|t| {
            serde_json::json!({
                "source": t.source, "topic": format!("delivery {}", t.id),
                "problem": t.problem, "since": t.received_at,
            })
        }))
        .collect();
    let deliveries: Vec<serde_json::Value> = troubled
        .iter()
        .map(|t| {
            serde_json::json!({
                "id": t.id, "source": t.source, "receivedAt": t.received_at,
                "attempts": t.attempts, "stopped": t.stopped, "problem": t.problem,
            })
        })
        .collect();
    let write_backs: Vec<serde_json::Value> = status
        .write_backs
        .into_iter()
        .map(|c| {
            serde_json::json!({
                "source": c.source, "pending": c.pending, "done": c.done,
                "dead": c.dead, "lastError": c.last_error.map(|e| e.0),
            })
        })
        .collect();
    let body = serde_json::json!({
        "calls": calls,
        "queued": queued,
        "unreadable": unreadable,
        "results": results,
        "paused": paused,
        "problems": problems,
        "deliveries": deliveries,
        "writeBacks": write_backs,
        "nextDue": next_due(&db)?,
        // How this instance's commits reach the disk (`database_sync`).
        "databaseSync": kendo_bridge_core::ledger::connection::sync_of(&db)?.map(|s| s.name()),
    });
    Ok(json(200, body.to_string()))
}

/// The status page: the `/status` numbers, refreshed by a script the app
/// serves itself, under a policy that allows nothing from elsewhere. The
/// host's fuller page (queues, reasons, chart) reads the host's database.
fn page() -> Response {
    const STATES: [(&str, &str); 10] = [
        (
            "waiting",
            "not ready yet (a recording, a transcript, a direction)",
        ),
        ("skipped", "left out by the rules, with their reason"),
        (
            "queued",
            "waiting for their send (POST /tick sends them when due)",
        ),
        ("sending", "on the wire"),
        ("sent", "in Kendo"),
        ("failed", "refused by Kendo for good"),
        ("dead", "retries ran out"),
        ("outcome-unknown", "answers lost: check Kendo"),
        ("unreadable", "deliveries kept unread"),
        ("results", "Kendo results stored"),
    ];
    let rows: String = STATES
        .iter()
        .map(|(k, what)| format!("<tr><th>{k}</th><td data-k=\"{k}\">…</td><td>{what}</td></tr>"))
        .collect();
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>kendo-bridge on Spin</title></head><body>\
         <h1>kendo-bridge on Spin</h1><p>Kendo key: <span id=\"paused\">…</span></p>\
         <table><thead><tr><th>calls</th><th>count</th><th></th></tr></thead><tbody>{rows}</tbody></table>\
         <h2>Needs a person</h2><ul id=\"problems\"><li>…</li></ul>\
         <h2>Write-backs</h2><ul id=\"write-backs\"><li>…</li></ul>\
         <p>Updates itself every 5 s from <a href=\"/status\">/status</a>.</p>\
         <script src=\"/page.js\"></script></body></html>"
    );
    Response::builder()
        .status(200)
        .header("content-type", "text/html; charset=utf-8")
        .header(
            "content-security-policy",
            "default-src 'none'; script-src 'self'; connect-src 'self'",
        )
        .body(body)
        .build()
}

fn json(status: u16, body: impl Into<String>) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.into())
        .build()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn variable(name: &str) -> Option<String> {
    spin_sdk::variables::get(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
}

/// The rules from the `rep_directory` (JSON list of `{key, email, name}`),
/// `min_duration_seconds` and `title_template` variables.
fn rules() -> Result<Rules> {
    #[derive(serde::Deserialize)]
    struct Rep {
        key: String,
        email: String,
        name: Option<String>,
    }
    let reps: Vec<Rep> = match variable("rep_directory") {
        Some(text) => serde_json::from_str(&text)
            .context("variable rep_directory is not a JSON list of {key, email, name}")?,
        None => Vec::new(),
    };
    Ok(Rules {
        title_template: variable("title_template"),
        min_duration_seconds: variable("min_duration_seconds")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        allowed_dispositions: Vec::new(),
        rep_directory: reps
            .into_iter()
            .map(|r| RepEntry {
                key: r.key,
                email: r.email,
                name: r.name,
            })
            .collect(),
    })
}

/// Verifies a request with the plugin (as signed for `uri`); None when it
/// is genuine, else the 401 to answer.
fn verify(req: &Request, scheme: Scheme, secret_variable: &str, uri: &str) -> Option<Response> {
    let Some(secret) = variable(secret_variable) else {
        log::line(
            "refused",
            &[
                ("route", uri),
                ("why", &format!("variable {secret_variable} is not set")),
            ],
        );
        return Some(json(
            401,
            format!(r#"{{"error":"variable {secret_variable} is not set"}}"#),
        ));
    };
    let headers = req
        .headers()
        .map(|(name, value)| Header {
            name: name.to_string(),
            value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
        })
        .collect();
    let request = SignedRequest {
        method: "POST".into(),
        uri: uri.to_string(),
        headers,
        body: req.body().to_vec(),
    };
    match signatures_api::verify(scheme, &secret, &request, now_ms()) {
        Ok(()) => None,
        Err(e) => {
            log::line(
                "refused",
                &[("route", uri), ("why", &format!("signature: {e:?}"))],
            );
            Some(json(
                401,
                serde_json::json!({ "error": format!("{e:?}") }).to_string(),
            ))
        }
    }
}

async fn aloware(req: &Request) -> Result<Reply> {
    if let Some(refused) = verify(req, Scheme::Aloware, "aloware_secret", req.uri()) {
        return Ok(refused.into());
    }
    receive("aloware", None, None, req.body())
}

async fn salesloft(req: &Request) -> Result<Reply> {
    if let Some(refused) = verify(req, Scheme::Salesloft, "salesloft_secret", req.uri()) {
        return Ok(refused.into());
    }
    let event = req
        .header("x-salesloft-event")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    receive("salesloft", None, event.as_deref(), req.body())
}

/// Keeps a verified delivery in the shared inbox and answers 200 once it is
/// committed (Aloware never sends one again), leaving its processing to
/// after the answer ([`process_stored`]): the sender waits for one short
/// transaction, not for source reads, the plugin or Kendo. A delivery
/// whose processing fails or stops stays for `POST /tick`. The same body
/// delivered again is kept once.
///
/// `sender_id` is the id the sender gave the delivery (Kendo's
/// `X-Kendo-Delivery-Id`), which keys it (the core's `delivery_id`).
pub(crate) fn receive(
    source: &str,
    sender_id: Option<&str>,
    event: Option<&str>,
    body: &[u8],
) -> Result<Reply> {
    let db = Db::open()?;
    let now = now_ms() as i64;
    let delivery_id = stored::delivery_id(sender_id, event, body);
    // Stored already taken for the processing that follows the answer,
    // in one statement: the only write the sender waits for.
    let inserted = stored::insert_taken(
        &db,
        source,
        &delivery_id,
        event,
        body,
        stored::LEASE_MS,
        now,
    )?;
    let id = match inserted {
        InboxInsert::Stored(id) => id,
        InboxInsert::Duplicate => {
            log::line(
                "duplicate",
                &[("source", source), ("delivery", &delivery_id)],
            );
            return Ok(Reply {
                response: json(200, r#"{"status":"duplicate"}"#),
                then: Some(After::Count(db, source.to_string(), inserted)),
            });
        }
    };
    log::line(
        "stored",
        &[
            ("source", source),
            ("delivery", &delivery_id),
            ("id", &id.to_string()),
        ],
    );
    Ok(Reply {
        response: json(
            200,
            serde_json::json!({ "status": "stored", "delivery": id }).to_string(),
        ),
        then: Some(After::Process(
            db,
            InboxEntry {
                id,
                source: source.to_string(),
                delivery_id,
                event: event.map(str::to_string),
                body: body.to_vec(),
                received_at: now,
                attempts: 0,
            },
        )),
    })
}

/// What a webhook leaves to do once it is answered, on its connection.
pub(crate) enum After {
    /// Count the delivery recognised as seen before.
    Count(Db, String, InboxInsert),
    /// Count and process the delivery stored (and taken) for it.
    Process(Db, InboxEntry),
}

/// Processes a delivery just stored (taken under the inbox's lease by its
/// insert) and answered: if this instance stops on it (a plugin trap, a
/// hang), `GET /status` shows it and a tick takes it again after the
/// lease. Nothing is answered any more: what happens is logged and in the
/// ledger.
async fn when_answered(after: After) {
    let (source, delivery) = match &after {
        After::Count(_, source, _) => (source.clone(), String::new()),
        After::Process(_, entry) => (entry.source.clone(), entry.delivery_id.clone()),
    };
    let outcome = async {
        match after {
            After::Count(db, source, inserted) => {
                db.in_background();
                stored::count(&db, &source, inserted)?;
            }
            After::Process(db, entry) => {
                db.in_background();
                stored::count(&db, &entry.source, InboxInsert::Stored(entry.id))?;
                inbox::process(&db, &entry).await?;
            }
        }
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = outcome {
        log::line(
            "error",
            &[
                ("source", &source),
                ("delivery", &delivery),
                ("error", &format!("{e:#}")),
            ],
        );
    }
}

/// A source API request that failed, and whether trying again later may
/// work (the core's [`kendo_bridge_core::sources::passing`]).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct Failed {
    pub(crate) message: String,
    pub(crate) passing: bool,
    /// The source's status, when it answered.
    pub(crate) status: Option<u16>,
    /// The request's method and path (for the scope a 403 asks for).
    pub(crate) method: String,
    pub(crate) path: String,
}

impl Failed {
    /// A failure no later attempt fixes (a variable not set).
    pub(crate) fn lasting(message: String) -> Failed {
        Failed {
            message,
            passing: false,
            status: None,
            method: String::new(),
            path: String::new(),
        }
    }
}

/// Kendo's result webhooks: verified, kept in the shared inbox (under
/// Kendo's delivery id), then each result kept once in
/// the ledger, matched to the call by the callId Kendo returned (the
/// core's rule).
async fn kendo(req: &Request) -> Result<Reply> {
    if let Some(refused) = verify(req, Scheme::Kendo, "kendo_webhook_secret", req.uri()) {
        return Ok(refused.into());
    }
    let header = |name: &str| {
        req.header(name)
            .and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let event = header("x-kendo-event");
    let sender_id = header("x-kendo-delivery-id");
    receive("kendo", sender_id.as_deref(), event.as_deref(), req.body())
}

/// What one send came to: whether the key can take more now (for
/// `POST /tick`), and the sends a dead instance left in flight, recovered
/// first.
struct Delivered {
    progress: Progress,
    recovered: usize,
}

enum Progress {
    /// Kendo has the call.
    Sent,
    /// The key's window, a 429 or a pause holds every send of the key:
    /// until when, if it is known (a pause lasts until a person acts).
    KeyHeld(Option<i64>),
    /// Nothing is due.
    Idle,
    /// Anything else: the next send may go.
    Other,
}

/// One send by the core's step ([`kendo_bridge_core::send::step`]) on the
/// app's ports: the sends a dead instance left recovered, then the oldest
/// due call claimed (one instance gets it, and only when the key's pacing
/// across every instance and its pause allow), posted, and what Kendo's
/// answer means recorded and logged.
async fn deliver(db: &Db) -> Result<Delivered> {
    use kendo_bridge_core::send::Step;
    let key = variable("kendo_api_key").context("variable kendo_api_key is not set")?;
    let fingerprint = kendo_bridge_core::key_fingerprint(&key);
    let kendo = SpinKendo { db, key: &key };
    let step_key = kendo_bridge_core::send::Key {
        team: delivery::TEAM,
        fingerprint: &fingerprint,
    };
    let (recovered, step) =
        kendo_bridge_core::send::step(&kendo, step_key, SendPacing::KENDO, policy::answers())
            .await?;
    let recovered = recovered.sent.len() + recovered.resent.len() + recovered.parked.len();
    let progress = match step {
        Step::Pace(at) => Progress::KeyHeld(Some(at)),
        Step::Paused(_) => Progress::KeyHeld(None),
        Step::Idle(_) => Progress::Idle,
        Step::Sent { item, action, held } => {
            log_action(&item.key.source, &item.key.source_id, &action);
            match action {
                // The claim expired before the answer: another instance
                // took the send over.
                _ if !held => Progress::Other,
                Action::Created { .. } => Progress::Sent,
                Action::RateLimited { retry_at, .. } => Progress::KeyHeld(Some(retry_at)),
                Action::PauseKey { .. } => Progress::KeyHeld(None),
                // Every send would fail the same way until the manifest
                // changes or Kendo can be reached: the tick stops sending.
                Action::NotSent { retry_at, .. } => Progress::KeyHeld(Some(retry_at)),
                Action::Retry { .. }
                | Action::ResendAfterLostAnswer { .. }
                | Action::Park { .. }
                | Action::Dead { .. }
                | Action::Fail { .. } => Progress::Other,
            }
        }
    };
    Ok(Delivered {
        progress,
        recovered,
    })
}

/// Kendo's Push API on Spin, for the core's send step.
struct SpinKendo<'a> {
    db: &'a Db,
    key: &'a str,
}

impl kendo_bridge_core::send::KendoApi for SpinKendo<'_> {
    type Error = anyhow::Error;

    async fn db<R: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn kendo_bridge_core::ledger::Database) -> Result<R, LedgerError>
        + Send
        + 'static,
    ) -> Result<R> {
        Ok(f(self.db)?)
    }

    async fn post(
        &self,
        payload: &str,
        timeout_ms: i64,
    ) -> Result<kendo_bridge_core::send::Reply, kendo_bridge_core::send::NoReply> {
        use kendo_bridge_core::send::{NoReply, Reply};
        let url = kendo_bridge_core::policy::ingest_url(&policy::kendo_url());
        let timeout = u64::try_from(timeout_ms).unwrap_or(0);
        match kendo_request::post(
            &url,
            &[
                ("content-type", "application/json"),
                ("x-api-key", self.key),
            ],
            payload.as_bytes(),
            timeout,
        ) {
            Ok(reply) => Ok(Reply {
                status: reply.status,
                headers: reply.headers,
                body: String::from_utf8_lossy(&reply.body).into_owned(),
            }),
            Err(kendo_request::NoReply::Unsent(why)) => Err(NoReply::Unsent(why)),
            Err(kendo_request::NoReply::Refused(why)) => Err(NoReply::Refused(why)),
            Err(kendo_request::NoReply::Lost(why)) => Err(NoReply::Lost(why)),
        }
    }

    /// A trap here takes this instance down (the core kept the 2xx first).
    async fn read_answer(
        &self,
        reply: kendo_bridge_core::send::Reply,
        now_s: u64,
    ) -> Result<Answer, kendo_bridge_core::ports::Trap> {
        let headers: Vec<Header> = reply
            .headers
            .into_iter()
            .map(|(name, value)| Header { name, value })
            .collect();
        Ok(
            match kendo_api::read_ingest_response(reply.status, &headers, &reply.body, now_s) {
                IngestOutcome::Created(call_id) => Answer::Created(call_id),
                IngestOutcome::RetryAfter(seconds) => Answer::RetryAfter(seconds),
                IngestOutcome::Retry(reason) => Answer::Retry(reason),
                IngestOutcome::Rejected(r) => Answer::Rejected {
                    kind: match r.kind {
                        kendo_api::RejectionKind::Unauthorized => RejectionKind::Unauthorized,
                        kendo_api::RejectionKind::BadRequest => RejectionKind::BadRequest,
                        kendo_api::RejectionKind::TooLarge => RejectionKind::TooLarge,
                        kendo_api::RejectionKind::Other => RejectionKind::Other,
                    },
                    status: r.status,
                    reason: r.reason,
                },
            },
        )
    }

    fn now(&self) -> i64 {
        now_ms() as i64
    }

    fn jitter(&self) -> f64 {
        jitter()
    }

    fn claim_token(&self) -> String {
        format!("{:016x}", random_u64())
    }

    fn write_backs(&self) -> Vec<String> {
        if write_back::enabled() {
            vec![kendo_bridge_core::sources::write_back::SOURCE.to_string()]
        } else {
            Vec::new()
        }
    }
}

/// One log line for what Kendo's answer came to.
fn log_action(source: &str, call: &str, action: &Action) {
    let (event, reason) = match action {
        Action::Created { call_id, .. } => ("sent", call_id.clone().unwrap_or_default()),
        Action::RateLimited { reason, .. } => ("rate-limited", reason.clone()),
        Action::Retry { reason, .. } => ("retried", reason.clone()),
        Action::ResendAfterLostAnswer { reason, .. } => ("answer-lost", reason.clone()),
        Action::PauseKey { reason } => ("paused", reason.clone()),
        Action::Park { reason } => ("outcome-unknown", reason.clone()),
        Action::Dead { reason } => ("dead", reason.clone()),
        Action::Fail { reason, .. } => ("failed", reason.clone()),
        Action::NotSent { code, reason, .. } => (*code, reason.clone()),
    };
    let field = if matches!(action, Action::Created { .. }) {
        "kendoCallId"
    } else {
        "reason"
    };
    log::line(
        event,
        &[("source", source), ("call", call), (field, &reason)],
    );
}

/// 64 random bits from WASI's random source (Spin provides it).
pub(crate) fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    // Without randomness the value only spreads retries and names claims:
    // a fixed one is still correct, if less even.
    let _ = getrandom::fill(&mut bytes);
    u64::from_le_bytes(bytes)
}

/// A uniform number in [0, 1) for the back-off's jitter.
pub(crate) fn jitter() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// Processes stored deliveries due now (each at its own next attempt),
/// polls HubSpot when `hubspot_poll` is `true`, takes back sends a dead
/// instance left in flight, and sends every queued call that is due while
/// the key's window allows. `?resume=1` lifts a pause (after the key was
/// replaced). For Spin's cron trigger, a platform cron or a Kubernetes
/// CronJob: `POST /tick` (or its old name `POST /drain`).
async fn tick(req: &Request) -> Result<Response> {
    let tick_ms = policy::tick_ms();
    let tick_seconds = tick_ms / 1000;
    let deadline = tick_clock::Deadline::after_ms(tick_ms);
    let db = Db::open()?;
    if req.query().split('&').any(|p| p == "resume=1") {
        send::resume(&db, delivery::TEAM)?;
    }
    // What is queued goes first: a plugin trap later in the tick (it takes
    // the instance down) must not hold up sends that are due.
    let first = send_due(&db, None).await?;
    // The tick does what the core says is due.
    let due = due::next(&db, Some(delivery::TEAM))?;
    let now = now_ms() as i64;
    // Stored deliveries due: deferred ones, and those an instance that
    // stopped left; what they queue goes with the tick's paced sends.
    let inbox = if due::is_due(due.inbox, now) {
        inbox::pass(&db).await?
    } else {
        kendo_bridge_core::inbox::Progress::default()
    };
    // HubSpot's calls search, when asked for.
    let polled = if variable("hubspot_poll").is_some_and(|v| v == "true") {
        let polled = hubspot::poll(&db).await;
        poll_health(&db, "hubspot", &polled)?;
        match polled {
            Ok(p) => serde_json::json!({
                "pages": p.pages, "calls": p.records - p.rejected, "rejected": p.rejected,
                "queued": p.report.enqueued + p.report.updated,
            }),
            // The checkpoint did not move past what failed: the next tick
            // reads it again.
            Err(e) => serde_json::json!({ "error": format!("{e:#}") }),
        }
    } else {
        serde_json::Value::Null
    };
    // Aloware calls whose wait for a transcript is over.
    let transcript_waits_over = if due::is_due(due.transcript_wait, now) {
        aloware::sweep(&db).await?
    } else {
        0
    };
    // Salesloft's calls list, when asked for.
    let salesloft_polled = if variable("salesloft_poll").is_some_and(|v| v == "true") {
        let polled = salesloft::poll(&db).await;
        poll_health(&db, "salesloft", &polled)?;
        match polled {
            Ok(p) => serde_json::json!({
                "pages": p.cycle.pages, "calls": p.cycle.records - p.cycle.rejected,
                "rejected": p.cycle.rejected,
                "queued": p.cycle.report.enqueued + p.cycle.report.updated,
                "budgetSpent": p.budget_spent,
            }),
            Err(e) => serde_json::json!({ "error": format!("{e:#}") }),
        }
    } else {
        serde_json::Value::Null
    };
    // HubSpot write-backs, when asked for (at most twenty a tick): before
    // the paced sends, which may take the rest of the tick.
    // (Asked again: the sends and results before may have queued some.)
    let written_back = if write_back::enabled()
        && due::is_due(due::next(&db, None)?.write_back, now_ms() as i64)
    {
        serde_json::to_value(write_back::pass(&db).await?)?
    } else {
        serde_json::Value::Null
    };
    // And what the deliveries and polls queued, at the key's rate until
    // the tick's time is up.
    let last = send_due(&db, Some(deadline)).await?;
    let (sent, held) = (first.sent + last.sent, last.held);
    let recovered = first.recovered + last.recovered;
    let queued = report::calls_in(&db, State::Queued)?;
    let paused = send::paused(&db, delivery::TEAM)?.map(|p| p.reason);
    Ok(json(
        200,
        serde_json::json!({
            "sent": sent,
            "tickSeconds": tick_seconds,
            "queued": queued,
            "recovered": recovered,
            "held": held,
            "paused": paused,
            "nextDue": next_due(&db)?,
            "inbox": {
                "processed": inbox.processed, "deferred": inbox.deferred,
                "closed": inbox.closed + inbox.abandoned,
            },
            "hubspotPoll": polled,
            "salesloftPoll": salesloft_polled,
            "writeBack": written_back,
            "transcriptWaitsOver": transcript_waits_over,
        })
        .to_string(),
    ))
}

/// When each kind of work is next due (the core's `due::next`), in epoch
/// milliseconds: when a tick next has something to do besides polling.
fn next_due(db: &Db) -> Result<serde_json::Value> {
    let due = due::next(db, Some(delivery::TEAM))?;
    Ok(serde_json::json!({
        "earliest": due.earliest(),
        "send": due.send,
        "inbox": due.inbox,
        "transcriptWait": due.transcript_wait,
        "writeBack": due.write_back,
    }))
}

/// How a source's poll did (the core's `poll::health`).
fn poll_health<T>(db: &Db, source: &str, polled: &Result<T>) -> Result<()> {
    let health =
        kendo_bridge_core::sources::poll::health(&polled.as_ref().map_err(|e| format!("{e:#}")));
    kendo_bridge_core::ledger::health::record(db, source, &health, now_ms() as i64)?;
    Ok(())
}

/// Sends what is due while the key's window allows: how many went, and
/// whether the key holds the rest back (its window, a 429, a pause, a
/// refused request). With a `deadline` (the tick's own), a send the window
/// holds back is waited for inside the tick when its slot comes before the
/// deadline, so one tick sends at the key's rate for as long as it lasts.
async fn send_due(db: &Db, deadline: Option<tick_clock::Deadline>) -> Result<Sends> {
    let mut sends = Sends::default();
    loop {
        let delivered = deliver(db).await?;
        sends.recovered += delivered.recovered;
        match delivered.progress {
            Progress::Sent => sends.sent += 1,
            Progress::Other => {}
            Progress::Idle => return Ok(sends),
            Progress::KeyHeld(until) => {
                sends.held = true;
                let (Some(deadline), Some(until)) = (deadline, until) else {
                    // Held until a person acts, or no time to wait: the
                    // rest waits for the next tick.
                    return Ok(sends);
                };
                let wait_ms = (until - now_ms() as i64).max(1);
                if !deadline.allows(wait_ms) {
                    return Ok(sends);
                }
                sends.held = false;
                tick_clock::sleep_ms(wait_ms);
            }
        }
    }
}

/// What a tick's sends did.
#[derive(Default)]
struct Sends {
    sent: u32,
    /// The key's window, a 429 or a pause held the rest.
    held: bool,
    /// Sends a dead instance left in flight, recovered.
    recovered: usize,
}

/// The tick's time budget on the monotonic clock: a pacing wait inside a
/// tick is real time the platform's request limit counts, whatever the
/// wall clock says.
mod tick_clock {
    use wasi::clocks::monotonic_clock;

    #[derive(Clone, Copy)]
    pub struct Deadline(u64);

    impl Deadline {
        /// `ms` from now.
        pub fn after_ms(ms: i64) -> Deadline {
            let ns = u64::try_from(ms).unwrap_or(0).saturating_mul(1_000_000);
            Deadline(monotonic_clock::now().saturating_add(ns))
        }

        /// Whether waiting `ms` still ends before the deadline.
        pub fn allows(self, ms: i64) -> bool {
            let ns = u64::try_from(ms).unwrap_or(0).saturating_mul(1_000_000);
            monotonic_clock::now().saturating_add(ns) <= self.0
        }
    }

    /// Blocks this request for `ms` (Spin serves other requests meanwhile).
    pub fn sleep_ms(ms: i64) {
        let ns = u64::try_from(ms).unwrap_or(0).saturating_mul(1_000_000);
        monotonic_clock::subscribe_duration(ns).block();
    }
}
