//! Each source's client as its configuration section sets it up: the API
//! URL, the credential and the key that names it, and the pacing or budget
//! its requests keep to.

use std::sync::Arc;

use kendo_bridge_core::sources::budget::ShareBudget;

use super::{RequestPacing, SourceApi, TeamBudget};
use crate::config::{HubspotConfig, SalesloftConfig};
use crate::context::Context;
use crate::sources::SourceError;
use crate::store::Millis;

impl SourceApi {
    /// HubSpot's API for reading calls (`hubspot.token`), its searches
    /// spaced to `hubspot.search_per_second`; None without a token.
    pub fn hubspot_reads(
        ctx: &Context,
        cfg: &HubspotConfig,
    ) -> Result<Option<SourceApi>, SourceError> {
        Ok(hubspot(ctx, cfg)?
            .map(|api| api.paced(RequestPacing::hubspot_searches(cfg.search_per_second))))
    }

    /// HubSpot's API for write-backs (`hubspot.token`): every request
    /// spaced to `hubspot.write_back_per_second`, since HubSpot's burst
    /// limit counts all of a token's requests together, and tried once
    /// (the write-back's own back-off retries it); None without a token.
    pub fn hubspot_writes(
        ctx: &Context,
        cfg: &HubspotConfig,
    ) -> Result<Option<SourceApi>, SourceError> {
        Ok(hubspot(ctx, cfg)?.map(|api| {
            api.paced(RequestPacing::every_request(cfg.write_back_per_second))
                .with_attempts(1)
        }))
    }

    /// Salesloft's API (`salesloft.api_key`), every request spending the
    /// bridge's share of the team's cost points; None without a key.
    pub fn salesloft(
        ctx: &Context,
        cfg: &SalesloftConfig,
    ) -> Result<Option<SourceApi>, SourceError> {
        let api = SourceApi::configured(
            kendo_bridge_core::sources::salesloft::SOURCE,
            &cfg.api_url,
            cfg.api_key.as_ref(),
            "salesloft.api_key",
            ctx,
        )?;
        Ok(api.map(|api| {
            api.budgeted(Arc::new(TeamBudget::new(ShareBudget::new(
                cfg.rate_limit_points,
                cfg.budget_share,
                cfg.rate_limit_window.as_millis() as Millis,
            ))))
        }))
    }
}

fn hubspot(ctx: &Context, cfg: &HubspotConfig) -> Result<Option<SourceApi>, SourceError> {
    SourceApi::configured(
        kendo_bridge_core::sources::hubspot::SOURCE,
        &cfg.api_url,
        cfg.token.as_ref(),
        "hubspot.token",
        ctx,
    )
}
