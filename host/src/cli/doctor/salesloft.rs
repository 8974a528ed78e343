//! `doctor`'s live checks of Salesloft: the calls, the call data records,
//! a user and (when on) the transcriptions, each read once through the
//! client polling reads with.

use kendo_bridge::config::SalesloftConfig;
use kendo_bridge::plugin::salesloft::{CallPage, Cursor, Listing};
use kendo_bridge::ports::HostPorts;
use kendo_bridge::source_http::SourceApi;
use kendo_bridge::sources::salesloft::SOURCE;
use kendo_bridge::sources::{Context, SourceError};
use kendo_bridge::store::Millis;
use kendo_bridge_core::sources::salesloft as workflow;

use super::DoctorCheck;

/// Each read polling makes, once, sending nothing anywhere.
pub async fn checks(ctx: &Context, cfg: &SalesloftConfig) -> Vec<DoctorCheck> {
    let api = match SourceApi::salesloft(ctx, cfg)
        .and_then(|api| api.ok_or(SourceError::NoCredentials(SOURCE)))
    {
        Ok(api) => api,
        Err(e) => return vec![DoctorCheck::needed("salesloft API", Err(e))],
    };
    let since = ctx.clock.now_ms() - cfg.initial_lookback.as_millis() as Millis;
    let (updated_since, page) = workflow::start(since);
    let at = Cursor {
        updated_since: Some(updated_since),
        page,
    };
    let mut checks = Vec::new();
    let calls = calls_page(ctx, &api, at.clone()).await;
    let user = calls
        .as_ref()
        .ok()
        .and_then(|page| page.calls.iter().find_map(|c| c.user_id.clone()));
    checks.push(DoctorCheck::needed(
        "salesloft calls (scope calls:read)",
        calls.map(|page| {
            format!(
                "read; {} call(s) on the first page of the initial look-back",
                page.calls.len()
            )
        }),
    ));
    checks.push(DoctorCheck::needed(
        "salesloft call data records (scope calls:read)",
        list(ctx, &api, Listing::CallDataRecords, &at)
            .await
            .map(|_| "read".to_string()),
    ));
    if let Some(user_id) = user {
        checks.push(DoctorCheck::needed(
            "salesloft users (scope team:read)",
            read_user(ctx, &api, &user_id)
                .await
                .map(|email| match email {
                    Some(_) => format!("read user {user_id}"),
                    None => format!("user {user_id} not found"),
                }),
        ));
    }
    if cfg.transcripts {
        checks.push(DoctorCheck::optional(
            "salesloft transcriptions (scope conversations:read)",
            list(ctx, &api, Listing::Transcriptions, &at)
                .await
                .map(|_| "read".to_string()),
        ));
    }
    checks
}

/// The page of a list the cursor points at.
async fn list(
    ctx: &Context,
    api: &SourceApi,
    what: Listing,
    at: &Cursor,
) -> Result<String, SourceError> {
    let at = at.clone();
    let request = ctx
        .plugin
        .call(move |b, s| b.kendo_bridge_salesloft().call_next_request(s, what, &at))
        .await?;
    api.fetch_list(&request).await
}

/// One page of calls as Salesloft lists it and the plugin reads it.
async fn calls_page(ctx: &Context, api: &SourceApi, at: Cursor) -> Result<CallPage, SourceError> {
    let body = list(ctx, api, Listing::Calls, &at).await?;
    ctx.plugin
        .call(move |b, s| b.kendo_bridge_salesloft().call_read_page(s, &at, &body))
        .await?
        .map_err(|e| SourceError::unreadable(SOURCE, &e))
}

/// A user's record, read as the core's workflow reads it.
async fn read_user(
    ctx: &Context,
    api: &SourceApi,
    user_id: &str,
) -> Result<Option<String>, SourceError> {
    let (ctx, api, user_id) = (ctx.clone(), api.clone(), user_id.to_string());
    HostPorts::run_async(move || async move {
        let ports = HostPorts::new(&ctx).reading(Some(&api), None);
        workflow::read_user(&ports, Some(&user_id)).await
    })
    .await
}
