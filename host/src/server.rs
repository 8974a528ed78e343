//! The webhook server: verify, de-duplicate, store, answer, then process.
//!
//! A delivery is answered 2xx only after its row is committed to the inbox,
//! so a crash after the answer loses nothing: the inbox processor picks the
//! row up on the next start. A bad or stale signature is answered 401 and
//! nothing is stored. Processing (fetching a HubSpot call, mapping, queueing)
//! happens after the answer, because senders time out quickly (Kendo waits
//! about 10 s) and retry, which would only create duplicates to discard.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::sync::Notify;

use crate::config::HubspotSignature;
use crate::plugin::signatures::{Scheme, SignedRequest};
use crate::plugin::types::Header;
use crate::sources::Context;
use crate::store::{InboxInsert, counter};

/// How one source's deliveries are authenticated.
#[derive(Clone)]
enum Auth {
    Verify {
        scheme: Scheme,
        secret: String,
    },
    /// Aloware's "None" auth, allowed explicitly in the configuration.
    Open,
    /// The source is enabled but no secret is configured: refuse.
    Missing(&'static str),
    /// HubSpot with the scheme chosen per request from its headers.
    HubspotByHeaders(String),
}

#[derive(Clone)]
struct ServerState {
    ctx: Context,
    inbox_wake: Arc<Notify>,
    public_url: Option<String>,
    salesloft: Option<Auth>,
    hubspot: Option<Auth>,
    aloware: Option<Auth>,
    kendo: Auth,
}

/// Builds the router. Secrets are read once here.
pub fn router(
    ctx: Context,
    inbox_wake: Arc<Notify>,
) -> Result<Router, crate::config::BridgeConfigError> {
    let cfg = ctx.config.clone();
    let secret = |r: &Option<crate::config::SecretRef>, scheme: Scheme, what: &'static str| match r
    {
        Some(r) => r
            .resolve(what)
            .map(|secret| Auth::Verify { scheme, secret }),
        None => Ok(Auth::Missing(what)),
    };
    let salesloft = match cfg.salesloft.as_ref().filter(|c| c.enabled) {
        Some(c) => Some(secret(
            &c.webhook_secret,
            Scheme::Salesloft,
            "salesloft.webhook_secret",
        )?),
        None => None,
    };
    let hubspot = match cfg.hubspot.as_ref().filter(|c| c.enabled) {
        Some(c) => {
            let scheme = match c.signature {
                HubspotSignature::Auto => None,
                HubspotSignature::V1 => Some(Scheme::HubspotV1),
                HubspotSignature::V2 => Some(Scheme::HubspotV2),
                HubspotSignature::V3 => Some(Scheme::HubspotV3),
            };
            let auth = secret(
                &c.webhook_secret,
                scheme.unwrap_or(Scheme::HubspotV3),
                "hubspot.webhook_secret",
            )?;
            Some(match (scheme, auth) {
                (None, Auth::Verify { secret, .. }) => Auth::HubspotByHeaders(secret),
                (_, auth) => auth,
            })
        }
        None => None,
    };
    let aloware = match cfg.aloware.as_ref().filter(|c| c.enabled) {
        Some(c) if c.webhook_secret.is_none() && c.allow_unauthenticated => Some(Auth::Open),
        Some(c) => Some(secret(
            &c.webhook_secret,
            Scheme::Aloware,
            "aloware.webhook_secret",
        )?),
        None => None,
    };
    let kendo = secret(
        &cfg.kendo.webhook_secret,
        Scheme::Kendo,
        "kendo.webhook_secret",
    )?;
    let page_ctx = ctx.clone();
    let state = ServerState {
        ctx,
        inbox_wake,
        public_url: cfg.server.public_url.clone(),
        salesloft,
        hubspot,
        aloware,
        kendo,
    };
    Ok(Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/webhooks/{source}", post(webhook))
        .layer(DefaultBodyLimit::max(cfg.server.max_body_bytes))
        .with_state(state)
        .merge(crate::page::router(&page_ctx)?))
}

async fn healthz(State(state): State<ServerState>) -> Response {
    match state
        .ctx
        .store
        .ledger(kendo_bridge_core::ledger::inbox::backlog)
        .await
    {
        Ok(backlog) => (
            StatusCode::OK,
            axum::Json(json!({"status": "ok", "inboxBacklog": backlog})),
        )
            .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "error", "error": e.to_string()})),
        )
            .into_response(),
    }
}

/// Prometheus's text format (OpenMetrics), read from the state database.
async fn metrics(State(state): State<ServerState>) -> Response {
    let now = state.ctx.clock.now_ms();
    let window_ms = state.ctx.config.kendo.window.as_millis() as crate::store::Millis;
    match state
        .ctx
        .store
        .run(move |s| crate::metrics::render(s, now, window_ms))
        .await
    {
        Ok(text) => (
            StatusCode::OK,
            [(
                axum::http::header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": message.into()}))).into_response()
}

async fn webhook(
    State(state): State<ServerState>,
    Path(source): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let auth = match source.as_str() {
        "salesloft" => state.salesloft.clone(),
        "hubspot" => state.hubspot.clone(),
        "aloware" => state.aloware.clone(),
        "kendo" => Some(state.kendo.clone()),
        _ => None,
    };
    let Some(auth) = auth else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no webhook endpoint for `{source}`: it is not enabled in the configuration"),
        );
    };
    let now = state.ctx.clock.now_ms();
    let auth = match auth {
        Auth::HubspotByHeaders(secret) => match hubspot_scheme(&headers) {
            Some(scheme) => Auth::Verify { scheme, secret },
            None => {
                return error(
                    StatusCode::UNAUTHORIZED,
                    "no HubSpot signature: expected X-HubSpot-Signature-v3 with \
                     X-HubSpot-Request-Timestamp, or X-HubSpot-Signature with \
                     X-HubSpot-Signature-Version v1 or v2",
                );
            }
        },
        auth => auth,
    };
    match auth {
        Auth::Missing(what) => {
            return error(
                StatusCode::UNAUTHORIZED,
                format!("webhooks for {source} are refused: `{what}` is not configured"),
            );
        }
        Auth::Open => {}
        // Resolved to `Verify` above; refusing keeps a mistake from opening
        // the endpoint.
        Auth::HubspotByHeaders(_) => {
            return error(
                StatusCode::UNAUTHORIZED,
                "the signature scheme was not chosen",
            );
        }
        Auth::Verify { scheme, secret } => {
            let host = headers
                .get("host")
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            let base = state
                .public_url
                .clone()
                .unwrap_or_else(|| format!("https://{host}"));
            let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
            let request = SignedRequest {
                method: method.to_string(),
                uri: format!("{}{}", base.trim_end_matches('/'), path),
                headers: to_headers(&headers),
                body: body.to_vec(),
            };
            let verdict = state
                .ctx
                .plugin
                .call(move |b, s| {
                    b.kendo_bridge_signatures().call_verify(
                        s,
                        scheme,
                        &secret,
                        &request,
                        now.max(0) as u64,
                    )
                })
                .await;
            let refused = match verdict {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.explain().to_string()),
                Err(trap) => Some(format!("the signature could not be checked: {trap}")),
            };
            if let Some(reason) = refused {
                let scope = source.clone();
                let _ = state
                    .ctx
                    .store
                    .ledger(move |db| {
                        kendo_bridge_core::ledger::bump(db, &scope, counter::BAD_SIGNATURE, 1)
                    })
                    .await;
                tracing::warn!(%source, %reason, "webhook refused");
                return error(StatusCode::UNAUTHORIZED, reason);
            }
        }
    }

    let event = event_name(&source, &headers, &body);
    let delivery_id = delivery_id(&source, &headers, event.as_deref(), &body);
    let stored = {
        let (source, event, body) = (source.clone(), event.clone(), body.to_vec());
        state
            .ctx
            .store
            .ledger(move |db| {
                kendo_bridge_core::ledger::inbox::insert(
                    db,
                    &source,
                    &delivery_id,
                    event.as_deref(),
                    &body,
                    now,
                )
            })
            .await
    };
    match stored {
        Ok(InboxInsert::Stored(id)) => {
            state.inbox_wake.notify_one();
            (
                StatusCode::OK,
                axum::Json(json!({"status": "stored", "id": id})),
            )
                .into_response()
        }
        Ok(InboxInsert::Duplicate) => {
            (StatusCode::OK, axum::Json(json!({"status": "duplicate"}))).into_response()
        }
        // Not stored: a 5xx makes the sender retry (Aloware does not; its
        // delivery is lost to us, so this is logged loudly).
        Err(e) => {
            tracing::error!(%source, error = %e, "webhook could not be stored");
            error(StatusCode::SERVICE_UNAVAILABLE, format!("not stored: {e}"))
        }
    }
}

/// The HubSpot signature scheme a request's headers announce (the core's
/// rule, shared with the Spin app).
fn hubspot_scheme(headers: &HeaderMap) -> Option<Scheme> {
    use kendo_bridge_core::webhooks::{HubspotSignature, hubspot_signature};
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    Some(match hubspot_signature(header)? {
        HubspotSignature::V1 => Scheme::HubspotV1,
        HubspotSignature::V2 => Scheme::HubspotV2,
        HubspotSignature::V3 => Scheme::HubspotV3,
    })
}

fn to_headers(headers: &HeaderMap) -> Vec<Header> {
    headers
        .iter()
        .map(|(k, v)| Header {
            name: k.as_str().to_string(),
            value: String::from_utf8_lossy(v.as_bytes()).into_owned(),
        })
        .collect()
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn event_name(source: &str, headers: &HeaderMap, body: &[u8]) -> Option<String> {
    match source {
        "salesloft" => header(headers, "x-salesloft-event"),
        "kendo" => header(headers, "x-kendo-event"),
        "hubspot" => Some(kendo_bridge_core::webhooks::hubspot_event(body).to_string()),
        _ => None,
    }
}

/// The id that makes a repeated delivery recognisable (the core's rule).
fn delivery_id(source: &str, headers: &HeaderMap, event: Option<&str>, body: &[u8]) -> String {
    let kendo_id = (source == "kendo")
        .then(|| header(headers, "x-kendo-delivery-id"))
        .flatten();
    kendo_bridge_core::ledger::inbox::delivery_id(kendo_id.as_deref(), event, body)
}
