//! `doctor`'s live checks of HubSpot: the calls search, an owner, the
//! dispositions, each read once through the client polling reads with.

use kendo_bridge::config::HubspotConfig;
use kendo_bridge::plugin::hubspot::{Cursor, SearchOptions, SearchPage};
use kendo_bridge::source_http::SourceApi;
use kendo_bridge::sources::hubspot::SOURCE;
use kendo_bridge::sources::{Context, SourceError};
use kendo_bridge::store::Millis;
use kendo_bridge_core::sources::Lookups;
use kendo_bridge_core::sources::hubspot::{CallRead, CallRef, Need};

use super::DoctorCheck;

/// Each read polling makes, once, sending nothing anywhere.
pub async fn checks(ctx: &Context, cfg: &HubspotConfig) -> Vec<DoctorCheck> {
    let api = match SourceApi::hubspot_reads(ctx, cfg)
        .and_then(|api| api.ok_or(SourceError::NoCredentials(SOURCE)))
    {
        Ok(api) => api,
        Err(e) => return vec![DoctorCheck::needed("hubspot API", Err(e))],
    };
    let options = SearchOptions {
        limit: cfg.page_size,
        lookback_ms: cfg.lookback.as_millis() as u64,
    };
    let since = ctx.clock.now_ms() - cfg.initial_lookback.as_millis() as Millis;
    let at = Cursor {
        since_ms: Some(since.max(0) as u64),
        after: None,
        high_water_ms: None,
    };
    let mut checks = Vec::new();
    let search = search_page(ctx, &api, at, options).await;
    let owner = search
        .as_ref()
        .ok()
        .and_then(|page| page.calls.iter().find_map(|c| c.owner_id.clone()));
    checks.push(DoctorCheck::needed(
        "hubspot calls search (scope crm.objects.contacts.read)",
        search.map(|page| {
            format!(
                "read; {} call(s) on the first page of the initial look-back",
                page.calls.len()
            )
        }),
    ));
    if let Some(owner_id) = owner {
        checks.push(DoctorCheck::needed(
            "hubspot owners (scope crm.objects.owners.read)",
            read_owner(ctx, &api, &owner_id)
                .await
                .map(|owner| match owner {
                    Some(_) => format!("read owner {owner_id}"),
                    None => format!("owner {owner_id} not found"),
                }),
        ));
    }
    let dispositions = async {
        let request = ctx
            .plugin
            .call(|b, s| b.kendo_bridge_hubspot().call_dispositions_request(s))
            .await?;
        api.fetch_list(&request).await
    }
    .await;
    checks.push(DoctorCheck::optional(
        "hubspot dispositions (GET /calling/v1/dispositions)",
        dispositions.map(|_| "read".to_string()),
    ));
    checks
}

/// One page of the calls search, as HubSpot answers it and the plugin
/// reads it.
async fn search_page(
    ctx: &Context,
    api: &SourceApi,
    at: Cursor,
    options: SearchOptions,
) -> Result<SearchPage, SourceError> {
    let cursor = at.clone();
    let request = ctx
        .plugin
        .call(move |b, s| {
            b.kendo_bridge_hubspot()
                .call_search_request(s, &cursor, options)
        })
        .await?;
    let body = api.fetch_list(&request).await?;
    ctx.plugin
        .call(move |b, s| {
            b.kendo_bridge_hubspot()
                .call_read_search(s, &at, options, &body)
        })
        .await?
        .map_err(|e| SourceError::unreadable(SOURCE, &e))
}

/// An owner, read as a call's read reads it (the core's [`CallRead`]: a
/// rep who left is found by the archived lookup).
async fn read_owner(
    ctx: &Context,
    api: &SourceApi,
    owner_id: &str,
) -> Result<Option<String>, SourceError> {
    let call = CallRef {
        id: String::new(),
        owner_id: Some(owner_id.to_string()),
        transcription_id: None,
    };
    let none = Lookups::default();
    let mut read = CallRead::new(call, false, &none, &none, ctx.clock.now_ms());
    loop {
        let request = match read.next() {
            Need::Map(inputs) => return Ok(inputs.owner),
            Need::Owner { owner_id, archived } => {
                ctx.plugin
                    .call(move |b, s| {
                        b.kendo_bridge_hubspot()
                            .call_owner_request(s, &owner_id, archived)
                    })
                    .await?
            }
            Need::Dispositions => {
                ctx.plugin
                    .call(|b, s| b.kendo_bridge_hubspot().call_dispositions_request(s))
                    .await?
            }
            Need::Transcript { transcription_id } => {
                ctx.plugin
                    .call(move |b, s| {
                        b.kendo_bridge_hubspot()
                            .call_transcript_request(s, &transcription_id)
                    })
                    .await?
            }
        };
        read.fetched(&request.path, api.fetch(&request).await)?;
    }
}
