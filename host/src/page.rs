//! The live status page: `GET /` (rendered here, useful without
//! JavaScript), `GET /api/status` (the same snapshot as `status --json`,
//! plus the page's view of it, which the page's script polls), and, when
//! `server.operator_token` is set, `POST /api/replay` and `POST /api/resume`.
//!
//! Everything the page needs is served by the bridge (the machine may have
//! no internet), under a Content-Security-Policy that allows nothing else.
//! Nothing secret is shown: the snapshot holds no key (a refused key only as
//! a fingerprint), and the operator token is kept as a hash.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::config::BridgeConfigError;
use crate::snapshot::{self, SendsChart, Snapshot, SnapshotOptions, age, counter_words, fix_for};
use crate::sources::Context;
use crate::store::{ReplayFilter, SharedStore, State, counter};
use crate::timefmt;
use kendo_bridge_core::ledger::{operator, send};

const SCRIPT: &str = include_str!("page/page.js");
const STYLE: &str = include_str!("page/page.css");

/// The page's own files only: no CDN, no inline code.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; img-src 'self'; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";

/// How many recent deliveries and errors the page lists.
const RECENT: u32 = 25;
const ERRORS: u32 = 10;
const UNMATCHED: u32 = 10;
/// How many stored deliveries in trouble the page lists.
const TROUBLED: u32 = 25;
/// The chart's width in pacing windows (60 minutes at Kendo's minute).
const CHART_BUCKETS: u32 = 60;

#[derive(Clone)]
struct PageState {
    store: SharedStore,
    clock: Clock,
    /// Wakes the delivery workers after a replay or a resume.
    wake: Arc<Notify>,
    /// SHA-256 of the operator token: compared in constant time, and the
    /// token itself is not kept.
    token: Option<[u8; 32]>,
    options: SnapshotOptions,
}

/// The page's routes. Reads `server.operator_token` once here.
pub fn router(ctx: &Context) -> Result<Router, BridgeConfigError> {
    let cfg = &ctx.config;
    let token = match &cfg.server.operator_token {
        Some(r) => Some(Sha256::digest(r.resolve("server.operator_token")?.as_bytes()).into()),
        None => None,
    };
    let options = SnapshotOptions {
        errors: ERRORS,
        unscored_after_ms: cfg.server.unscored_after.as_millis() as i64,
        unmatched: UNMATCHED,
        recent: RECENT,
        teams: cfg.kendo.teams.iter().map(|t| t.name.clone()).collect(),
        sends: Some(SendsChart {
            bucket_ms: (cfg.kendo.window.as_millis() as i64).max(1),
            buckets: CHART_BUCKETS,
            limit: cfg.kendo.requests_per_window,
        }),
        troubled: TROUBLED,
    };
    Ok(routes(PageState {
        store: ctx.store.clone(),
        clock: ctx.clock,
        wake: ctx.wake.clone(),
        token,
        options,
    }))
}

fn routes(state: PageState) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/api/status", get(api_status))
        .route("/assets/page.js", get(script))
        .route("/assets/page.css", get(style))
        .route("/api/replay", post(replay))
        .route("/api/resume", post(resume))
        .with_state(state)
}

async fn snapshot(state: &PageState) -> Result<Snapshot, Response> {
    let now = state.clock.now_ms();
    let options = state.options.clone();
    state
        .store
        .run(move |s| snapshot::gather(s, now, &options))
        .await
        .map_err(|e| {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"error": format!("the state database cannot be read: {e}")})),
            )
                .into_response()
        })
}

fn no_store(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

async fn page(AxumState(state): AxumState<PageState>) -> Response {
    let snap = match snapshot(&state).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let view = View::of(&snap, state.token.is_some());
    no_store(
        (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CONTENT_SECURITY_POLICY, CSP),
            ],
            render_page(&view),
        )
            .into_response(),
    )
}

async fn api_status(AxumState(state): AxumState<PageState>) -> Response {
    let snap = match snapshot(&state).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let view = View::of(&snap, state.token.is_some());
    no_store(axum::Json(json!({"status": snapshot::to_json(&snap), "view": view})).into_response())
}

async fn script() -> Response {
    no_store(
        (
            [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
            SCRIPT,
        )
            .into_response(),
    )
}

async fn style() -> Response {
    no_store(([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response())
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({"error": message}))).into_response()
}

/// The answer to give when the request does not carry the operator token.
fn refusal(state: &PageState, headers: &HeaderMap) -> Option<Response> {
    let Some(expected) = &state.token else {
        return Some(refuse(
            StatusCode::FORBIDDEN,
            "the status page is read-only: set `server.operator_token` in the configuration \
             to replay and resume from it (or use `kendo-bridge replay` / `kendo-bridge resume`)",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or("");
    // Hashing first makes the comparison's time independent of the
    // token's length too.
    let given: [u8; 32] = Sha256::digest(given.as_bytes()).into();
    if bool::from(given.ct_eq(expected)) {
        None
    } else {
        let mut r = refuse(
            StatusCode::UNAUTHORIZED,
            "the operator token is missing or wrong: send `Authorization: Bearer <server.operator_token>`",
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        Some(r)
    }
}

/// `POST /api/replay`: what `kendo-bridge replay` takes.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ReplayRequest {
    #[serde(default)]
    team: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    include_failed: bool,
}

async fn replay(
    AxumState(state): AxumState<PageState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = refusal(&state, &headers) {
        return r;
    }
    let request: ReplayRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                &format!(
                    "expected {{\"team\", \"source\", \"id\", \"includeFailed\"}} (all optional): {e}"
                ),
            );
        }
    };
    if request.id.is_some() && request.source.is_none() {
        return refuse(StatusCode::BAD_REQUEST, "`id` needs `source`");
    }
    let filter = ReplayFilter {
        team: request.team,
        source: request.source,
        source_id: request.id,
        include_failed: request.include_failed,
    };
    let now = state.clock.now_ms();
    match state
        .store
        .run(move |s| Ok(operator::replay(s.database(), &filter, now)?))
        .await
    {
        Ok(n) => {
            tracing::info!(replayed = n, "replay from the status page");
            state.wake.notify_waiters();
            axum::Json(
                json!({"replayed": n, "message": format!("{n} call(s) put back in the queue")}),
            )
            .into_response()
        }
        Err(e) => refuse(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

/// `POST /api/resume`: what `kendo-bridge resume` takes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResumeRequest {
    team: String,
}

async fn resume(
    AxumState(state): AxumState<PageState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = refusal(&state, &headers) {
        return r;
    }
    let request: ResumeRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                &format!("expected {{\"team\": \"...\"}}: {e}"),
            );
        }
    };
    let team = request.team.clone();
    match state
        .store
        .run(move |s| Ok(send::resume(s.database(), &team)?))
        .await
    {
        Ok(lifted) => {
            tracing::info!(team = %request.team, lifted, "resume from the status page");
            state.wake.notify_waiters();
            let message = if lifted {
                format!("team `{}` resumed", request.team)
            } else {
                format!("team `{}` was not paused", request.team)
            };
            axum::Json(json!({"resumed": lifted, "message": message})).into_response()
        }
        Err(e) => refuse(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

// ---- the view: what the page shows, rendered here and by page.js ----------------

/// What the page shows. The server renders it to HTML and `page.js`
/// renders the same structure from `/api/status`, so the two cannot drift
/// apart in what they show, only in markup.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct View {
    generated_at: String,
    /// Replay and resume buttons are shown (an operator token is set).
    operator: bool,
    sections: Vec<Section>,
    chart: Chart,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Section {
    id: &'static str,
    title: String,
    /// A number shown next to the title.
    summary: Option<Cell>,
    note: Option<String>,
    /// Said when there are no rows.
    empty: &'static str,
    columns: Vec<&'static str>,
    rows: Vec<Row>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    cells: Vec<Cell>,
    action: Option<Action>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Cell {
    text: String,
    /// A stable name for the value (`data-k`), for scripts and tests.
    key: Option<String>,
    /// `bad`, `warn` or `ok`.
    tone: Option<&'static str>,
}

fn cell(text: impl ToString) -> Cell {
    Cell {
        text: text.to_string(),
        key: None,
        tone: None,
    }
}

fn keyed(text: impl ToString, key: String) -> Cell {
    Cell {
        text: text.to_string(),
        key: Some(key),
        tone: None,
    }
}

impl Cell {
    fn tone(mut self, tone: &'static str) -> Cell {
        self.tone = Some(tone);
        self
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Action {
    /// `replay` or `resume`: the endpoint under `/api/`.
    kind: &'static str,
    label: &'static str,
    /// The request body.
    body: serde_json::Value,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Chart {
    title: String,
    limit: u32,
    teams: Vec<ChartSeries>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ChartSeries {
    team: String,
    per_bucket: Vec<u64>,
    total: u64,
    max: u64,
}

fn window_words(ms: i64) -> String {
    if ms == 60_000 {
        "minute".into()
    } else if ms % 1000 == 0 {
        format!("{} s", ms / 1000)
    } else {
        format!("{ms} ms")
    }
}

impl View {
    fn of(snap: &Snapshot, operator: bool) -> View {
        let now = snap.now;
        let mut sections = Vec::new();

        let mut columns = vec!["team", "queue"];
        columns.extend(State::ALL.iter().map(|s| s.as_str()));
        columns.extend(["Kendo 429s", "retries", "re-sent after a lost answer"]);
        sections.push(Section {
            id: "teams",
            title: "Teams".into(),
            summary: None,
            note: Some(
                "Calls by state per Kendo team; the queue is what waits for a paced send slot."
                    .into(),
            ),
            empty: "no team configured",
            columns,
            rows: snap
                .teams
                .iter()
                .map(|t| {
                    let name = t.team();
                    let mut cells = vec![
                        cell(name),
                        keyed(t.queue_depth, format!("team/{name}/queue")),
                    ];
                    for st in State::ALL {
                        let n = t.counts.get(st);
                        let c = keyed(n, format!("team/{name}/{}", st.as_str()));
                        let bad = matches!(st, State::Failed | State::Dead | State::OutcomeUnknown);
                        cells.push(if bad && n > 0 { c.tone("bad") } else { c });
                    }
                    for name_ in [
                        counter::KENDO_429,
                        counter::RETRIES,
                        counter::RESENT_AFTER_LOST_ANSWER,
                    ] {
                        cells.push(keyed(
                            snap.team_counter(name, name_),
                            format!("team/{name}/{name_}"),
                        ));
                    }
                    // All of a team's dead letters at once, as
                    // `kendo-bridge replay --team T` (failed calls are
                    // replayed one by one, after fixing their cause).
                    let action = (t.counts.get(State::Dead) > 0).then(|| Action {
                        kind: "replay",
                        label: "Replay dead letters",
                        body: json!({"team": name}),
                    });
                    Row { cells, action }
                })
                .collect(),
        });

        sections.push(Section {
            id: "paused",
            title: "Paused keys".into(),
            summary: None,
            note: Some("Kendo refused the key (401): nothing is sent for the team until its key changes or it is resumed.".into()),
            empty: "none: every team's key is sending",
            columns: vec!["team", "since", "reason", "key fingerprint"],
            rows: snap
                .teams
                .iter()
                .filter_map(|t| {
                    let p = t.paused.as_ref()?;
                    Some(Row {
                        cells: vec![
                            keyed(t.team(), format!("paused/{}", t.team())).tone("bad"),
                            cell(format!(
                                "{} ({} ago)",
                                timefmt::iso(p.paused_at),
                                age(now - p.paused_at)
                            )),
                            cell(&p.reason),
                            cell(&p.key_fingerprint),
                        ],
                        action: Some(Action {
                            kind: "resume",
                            label: "Resume",
                            body: json!({"team": t.team()}),
                        }),
                    })
                })
                .collect(),
        });

        sections.push(Section {
            id: "skipped",
            title: "Skipped, by reason".into(),
            summary: None,
            note: None,
            empty: "nothing skipped",
            columns: vec!["reason", "calls", "what fixes it"],
            rows: snap
                .skipped
                .iter()
                .map(|(code, n)| Row {
                    cells: vec![
                        cell(code),
                        keyed(n, format!("skipped/{code}")),
                        cell(fix_for(code)),
                    ],
                    action: None,
                })
                .collect(),
        });
        sections.push(Section {
            id: "waiting",
            title: "Waiting, by reason".into(),
            summary: None,
            note: None,
            empty: "nothing waiting",
            columns: vec!["reason", "calls"],
            rows: snap
                .waiting
                .iter()
                .map(|(code, n)| Row {
                    cells: vec![cell(code), keyed(n, format!("waiting/{code}"))],
                    action: None,
                })
                .collect(),
        });

        sections.push(Section {
            id: "errors-by-reason",
            title: "Failed, dead and outcome-unknown, by reason".into(),
            summary: None,
            note: None,
            empty: "none",
            columns: vec!["state", "reason", "calls"],
            rows: snap
                .errors_by_reason
                .iter()
                .map(|(state, code, n)| Row {
                    cells: vec![
                        cell(state.as_str()).tone("bad"),
                        cell(code),
                        keyed(n, format!("errors/{}/{code}", state.as_str())),
                    ],
                    action: None,
                })
                .collect(),
        });

        sections.push(Section {
            id: "sources",
            title: "Sources".into(),
            summary: None,
            note: None,
            empty: "nothing recorded yet: no poll or webhook has run",
            columns: vec!["source", "part", "state", "last worked", "problem"],
            rows: snap
                .health
                .iter()
                .map(|h| {
                    let key = format!("health/{}/{}", h.source, h.topic);
                    let last_ok = h.ok_at.map_or("never".into(), |at| {
                        format!("{} ({} ago)", timefmt::iso(at), age(now - at))
                    });
                    let (state, problem) = match &h.problem {
                        Some(p) => (
                            keyed("failing", key).tone("bad"),
                            format!(
                                "since {} ({} times): {p}",
                                h.problem_since.map_or("-".into(), timefmt::iso),
                                h.problem_count
                            ),
                        ),
                        None => (keyed("ok", key).tone("ok"), String::new()),
                    };
                    Row {
                        cells: vec![
                            cell(&h.source),
                            cell(&h.topic),
                            state,
                            cell(last_ok),
                            cell(problem),
                        ],
                        action: None,
                    }
                })
                .collect(),
        });

        sections.push(Section {
            id: "checkpoints",
            title: "Checkpoints".into(),
            summary: None,
            note: Some("Where each poller resumes; a checkpoint moves only after the calls it covers are stored.".into()),
            empty: "none yet: no source has been polled",
            columns: vec!["source", "cursor", "moved", "age"],
            rows: snap
                .checkpoints
                .iter()
                .map(|(source, cursor, at)| Row {
                    cells: vec![
                        cell(source),
                        cell(cursor),
                        cell(timefmt::iso(*at)),
                        keyed(age(now - at), format!("checkpoint/{source}/age")),
                    ],
                    action: None,
                })
                .collect(),
        });

        let mut counters: Vec<Row> = vec![Row {
            cells: vec![
                cell("inbox"),
                cell("webhook deliveries stored, not processed yet"),
                keyed(snap.inbox_backlog, "inbox/backlog".into()),
            ],
            action: None,
        }];
        counters.extend(
            snap.source_counters()
                .into_iter()
                .map(|(scope, name, v)| Row {
                    cells: vec![
                        cell(scope),
                        cell(counter_words(name)),
                        keyed(v, format!("counter/{scope}/{name}")),
                    ],
                    action: None,
                }),
        );
        sections.push(Section {
            id: "webhooks",
            title: "Webhooks and source requests".into(),
            summary: None,
            note: None,
            empty: "",
            columns: vec!["source", "what", "count"],
            rows: counters,
        });

        sections.push(Section {
            id: "troubled",
            title: "Stored deliveries in trouble".into(),
            summary: None,
            note: Some(format!(
                "Webhook deliveries stored but not processed yet: failing (tried again later), or whose processing stopped or hangs (a plugin trap, or a plugin that never returns; closed after {} such stops).",
                kendo_bridge_core::ledger::inbox::MAX_ABANDONED
            )),
            empty: "none: every stored delivery was processed or waits its turn",
            columns: vec!["delivery", "source", "received", "failed", "stopped", "problem"],
            rows: snap
                .troubled
                .iter()
                .map(|t| Row {
                    cells: vec![
                        keyed(t.id, format!("troubled/{}", t.id)).tone("bad"),
                        cell(&t.source),
                        cell(format!(
                            "{} ({} ago)",
                            timefmt::iso(t.received_at),
                            age(now - t.received_at)
                        )),
                        cell(t.attempts),
                        cell(t.stopped),
                        cell(&t.problem),
                    ],
                    action: None,
                })
                .collect(),
        });

        sections.push(Section {
            id: "unscored",
            title: format!(
                "Sent but not scored after {}",
                age(snap.unscored_after_ms)
            ),
            summary: None,
            note: Some("Calls Kendo accepted with no score from its call.uploaded webhook yet: check Kendo's webhook to /webhooks/kendo.".into()),
            empty: "none: every call sent long enough ago has its score",
            columns: vec!["team", "calls", "oldest sent"],
            rows: snap
                .unscored
                .iter()
                .map(|(team, n, oldest)| Row {
                    cells: vec![
                        cell(team),
                        keyed(n, format!("unscored/{team}")).tone("warn"),
                        cell(timefmt::iso(*oldest)),
                    ],
                    action: None,
                })
                .collect(),
        });
        sections.push(Section {
            id: "unmatched",
            title: "Kendo results for calls this bridge never sent".into(),
            summary: Some(keyed(snap.unmatched.0, "unmatched/count".into())),
            note: Some("From another integration, or another bridge's database.".into()),
            empty: "none",
            columns: vec!["received", "event", "Kendo callId", "event id"],
            rows: snap
                .unmatched
                .1
                .iter()
                .map(|u| Row {
                    cells: vec![
                        cell(timefmt::iso(u.received_at)),
                        cell(&u.event),
                        cell(&u.call_id),
                        cell(&u.event_id),
                    ],
                    action: None,
                })
                .collect(),
        });

        sections.push(Section {
            id: "errors",
            title: "Latest errors".into(),
            summary: None,
            note: Some("Failed: unreadable or refused by Kendo for good (replay after fixing the cause). Dead: retries ran out (replay after the outage). Outcome-unknown: check Kendo, then `kendo-bridge settle`.".into()),
            empty: "none",
            columns: vec!["at", "state", "source", "source id", "team", "code", "reason"],
            rows: snap
                .errors
                .iter()
                .map(|r| {
                    let action = match r.state {
                        State::Dead | State::Failed => Some(Action {
                            kind: "replay",
                            label: "Replay",
                            body: json!({
                                "team": r.key.team, "source": r.key.source, "id": r.key.source_id,
                                "includeFailed": r.state == State::Failed,
                            }),
                        }),
                        _ => None,
                    };
                    Row {
                        cells: vec![
                            cell(timefmt::iso(r.updated_at)),
                            cell(r.state.as_str()).tone("bad"),
                            cell(&r.key.source),
                            cell(&r.key.source_id),
                            cell(&r.key.team),
                            cell(r.reason_code.as_deref().unwrap_or("-")),
                            cell(r.reason.as_deref().unwrap_or("")),
                        ],
                        action,
                    }
                })
                .collect(),
        });

        sections.push(Section {
            id: "deliveries",
            title: "Recent deliveries".into(),
            summary: None,
            note: None,
            empty: "no call recorded yet",
            columns: vec![
                "updated",
                "state",
                "source",
                "source id",
                "team",
                "Kendo callId",
                "AI score",
                "detail",
            ],
            rows: snap
                .recent
                .iter()
                .map(|r| {
                    let k = format!(
                        "delivery/{}/{}/{}",
                        r.key.source, r.key.source_id, r.key.team
                    );
                    let detail = match (&r.reason_code, &r.reason) {
                        (Some(code), Some(reason)) => format!("[{code}] {reason}"),
                        (Some(code), None) => format!("[{code}]"),
                        _ => r.title.clone().unwrap_or_default(),
                    };
                    Row {
                        cells: vec![
                            cell(timefmt::iso(r.updated_at)),
                            keyed(r.state.as_str(), format!("{k}/state")),
                            cell(&r.key.source),
                            cell(&r.key.source_id),
                            cell(&r.key.team),
                            keyed(
                                r.kendo_call_id.as_deref().unwrap_or("-"),
                                format!("{k}/callId"),
                            ),
                            keyed(
                                r.ai_score.map_or("-".to_string(), |s| format!("{s:.0}")),
                                format!("{k}/score"),
                            ),
                            cell(detail),
                        ],
                        action: None,
                    }
                })
                .collect(),
        });

        let chart = match &snap.sends {
            Some((spec, series)) => Chart {
                title: format!(
                    "Requests to Kendo per {} (last {}), against the limit of {}",
                    window_words(spec.bucket_ms),
                    age(spec.bucket_ms * i64::from(spec.buckets)),
                    spec.limit
                ),
                limit: spec.limit,
                teams: series
                    .iter()
                    .map(|s| ChartSeries {
                        team: s.team.clone(),
                        total: s.per_bucket.iter().sum(),
                        max: s.per_bucket.iter().copied().max().unwrap_or(0),
                        per_bucket: s.per_bucket.clone(),
                    })
                    .collect(),
            },
            None => Chart {
                title: String::new(),
                limit: 0,
                teams: Vec::new(),
            },
        };
        View {
            generated_at: timefmt::iso(now),
            operator,
            sections,
            chart,
        }
    }
}

// ---- HTML -------------------------------------------------------------------------

/// Escapes text for HTML content and quoted attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn render_cell(out: &mut String, tag: &str, c: &Cell) {
    let _ = write!(out, "<{tag}");
    if let Some(k) = &c.key {
        let _ = write!(out, " data-k=\"{}\"", esc(k));
    }
    if let Some(t) = c.tone {
        let _ = write!(out, " class=\"{t}\"");
    }
    let _ = write!(out, ">{}</{tag}>", esc(&c.text));
}

fn render_section(out: &mut String, s: &Section, operator: bool) {
    let _ = write!(out, "<section id=\"{}\"><h2>{}", s.id, esc(&s.title));
    if let Some(c) = &s.summary {
        out.push_str(": ");
        render_cell(out, "span", c);
    }
    out.push_str("</h2>");
    if let Some(n) = &s.note {
        let _ = write!(out, "<p class=\"note\">{}</p>", esc(n));
    }
    if s.rows.is_empty() {
        let _ = write!(out, "<p class=\"empty\">{}</p></section>", esc(s.empty));
        return;
    }
    let actions = operator && s.rows.iter().any(|r| r.action.is_some());
    out.push_str("<table><thead><tr>");
    for c in &s.columns {
        let _ = write!(out, "<th>{}</th>", esc(c));
    }
    if actions {
        out.push_str("<th></th>");
    }
    out.push_str("</tr></thead><tbody>");
    for r in &s.rows {
        out.push_str("<tr>");
        for c in &r.cells {
            render_cell(out, "td", c);
        }
        if actions {
            out.push_str("<td>");
            if let Some(a) = &r.action {
                let _ = write!(
                    out,
                    "<button type=\"button\" data-action=\"{}\" data-body=\"{}\">{}</button>",
                    a.kind,
                    esc(&a.body.to_string()),
                    esc(a.label)
                );
            }
            out.push_str("</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></section>");
}

/// One team's bars, with the limit as a line. The same drawing as
/// `page.js`'s `chart()`.
fn render_chart(out: &mut String, chart: &Chart) {
    const W: f64 = 600.0;
    const H: f64 = 120.0;
    let _ = write!(out, "<section id=\"chart\"><h2>{}</h2>", esc(&chart.title));
    if chart.teams.is_empty() {
        out.push_str("<p class=\"empty\">no team configured</p>");
    }
    for s in &chart.teams {
        let top = (s.max.max(u64::from(chart.limit)) as f64 * 1.15).max(1.0);
        let n = s.per_bucket.len().max(1) as f64;
        let bw = W / n;
        let _ = write!(
            out,
            "<figure><figcaption>{} &#8212; <span data-k=\"chart/{}/total\">{}</span> request(s), at most <span data-k=\"chart/{}/max\">{}</span> in one window</figcaption>\
             <svg viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" aria-label=\"requests per window for {}\">",
            esc(&s.team),
            esc(&s.team),
            s.total,
            esc(&s.team),
            s.max,
            esc(&s.team)
        );
        for (i, v) in s.per_bucket.iter().enumerate() {
            let h = *v as f64 / top * H;
            let over = *v > u64::from(chart.limit);
            let _ = write!(
                out,
                "<rect class=\"{}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"><title>{v}</title></rect>",
                if over { "bar over" } else { "bar" },
                i as f64 * bw + 0.5,
                H - h,
                (bw - 1.0).max(0.5),
                h
            );
        }
        let y = H - f64::from(chart.limit) / top * H;
        let _ = write!(
            out,
            "<line class=\"limit\" x1=\"0\" x2=\"{W}\" y1=\"{y:.1}\" y2=\"{y:.1}\"></line>\
             <text class=\"limit\" x=\"4\" y=\"{:.1}\">limit {}</text></svg></figure>",
            (y - 3.0).max(10.0),
            chart.limit
        );
    }
    out.push_str("</section>");
}

/// The chart comes after the first sections (teams, paused keys): the
/// numbers an operator looks for first stay on top. `page.js` keeps the
/// same order.
const CHART_AFTER: usize = 2;

fn render_view(out: &mut String, view: &View) {
    for (i, s) in view.sections.iter().enumerate() {
        if i == CHART_AFTER {
            render_chart(out, &view.chart);
        }
        render_section(out, s, view.operator);
    }
    if view.sections.len() <= CHART_AFTER {
        render_chart(out, &view.chart);
    }
}

fn render_page(view: &View) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>kendo-bridge status</title><link rel=\"stylesheet\" href=\"/assets/page.css\"></head>\
         <body data-operator=\"{}\" data-updated=\"\" data-updates=\"0\">\
         <header><h1>kendo-bridge</h1><p>Status at <time id=\"generated\">{}</time> \
         <span id=\"live\">(rendered by the server; reload for new numbers)</span></p>",
        view.operator,
        esc(&view.generated_at)
    );
    if view.operator {
        out.push_str(
            "<p class=\"operator\"><label>Operator token <input type=\"password\" id=\"token\" \
             autocomplete=\"off\"></label> (needed by Replay and Resume; kept in this tab only) \
             <span id=\"action-result\" role=\"status\"></span></p>",
        );
    } else {
        out.push_str(
            "<p class=\"readonly\">Read-only: set <code>server.operator_token</code> to replay \
             and resume from this page.</p>",
        );
    }
    out.push_str("</header><main id=\"view\">");
    render_view(&mut out, view);
    out.push_str("</main><script src=\"/assets/page.js\"></script></body></html>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_a_source_cannot_become_markup() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }

    #[test]
    fn a_window_of_a_minute_is_called_a_minute() {
        assert_eq!(window_words(60_000), "minute");
        assert_eq!(window_words(2_000), "2 s");
    }

    /// The page's routes over a database holding one stored HubSpot
    /// delivery that failed once, served on a local port: its URL, the
    /// delivery's id and the server's task.
    async fn serving_a_failing_delivery() -> (String, i64, tokio::task::JoinHandle<()>) {
        use kendo_bridge_core::ledger::inbox;
        let store = crate::store::Store::open_in_memory().expect("an in-memory database");
        let db = store.database();
        inbox::insert(db, "hubspot", "d1", None, b"[]", 1_000).expect("the delivery is stored");
        let taken = inbox::claim(db, 10, 60_000, 1_000).expect("it is taken");
        let id = taken[0].id;
        inbox::defer(
            db,
            id,
            9_000,
            "hubspot answered 503 to GET /crm/v3/objects/calls/7",
        )
        .expect("it is deferred");
        let state = PageState {
            store: SharedStore::new(store),
            clock: Clock::system(),
            wake: Arc::new(Notify::new()),
            token: None,
            options: SnapshotOptions {
                troubled: TROUBLED,
                ..SnapshotOptions::default()
            },
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a local port");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, routes(state)).await;
        });
        (url, id, server)
    }

    async fn get(url: &str) -> String {
        let response = reqwest::get(url).await.expect("the page answers");
        assert_eq!(response.status(), 200, "{url}");
        response.text().await.expect("a body")
    }

    #[tokio::test]
    async fn a_stored_delivery_in_trouble_is_on_the_page() {
        let (url, id, server) = serving_a_failing_delivery().await;
        let html = get(&format!("{url}/")).await;
        let shown = format!("data-k=\"troubled/{id}\"");
        assert!(html.contains(&shown), "{html}");
        assert!(html.contains("hubspot answered 503"), "{html}");
        server.abort();
    }

    #[tokio::test]
    async fn a_stored_delivery_in_trouble_is_in_the_status_api() {
        let (url, id, server) = serving_a_failing_delivery().await;
        let api: serde_json::Value =
            serde_json::from_str(&get(&format!("{url}/api/status")).await).expect("JSON");
        let listed = &api["status"]["troubledDeliveries"];
        assert_eq!(listed[0]["id"], id, "{api:#}");
        assert_eq!(listed[0]["source"], "hubspot", "{api:#}");
        assert_eq!(listed[0]["attempts"], 1, "{api:#}");
        assert!(
            listed[0]["problem"]
                .as_str()
                .is_some_and(|p| p.contains("hubspot answered 503")),
            "{api:#}"
        );
        // The view `page.js` draws from the same answer has the row too.
        let rows = api["view"]["sections"]
            .as_array()
            .and_then(|sections| sections.iter().find(|s| s["id"] == "troubled"))
            .and_then(|section| section["rows"].as_array())
            .map(Vec::len);
        assert_eq!(rows, Some(1), "{api:#}");
        server.abort();
    }
}
