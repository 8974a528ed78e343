//! Simulated Salesloft, HubSpot, Aloware and Kendo for kendo-bridge's tests
//! and demo.
//!
//! Each simulator is an in-process HTTP server on `127.0.0.1` (port 0 by
//! default) speaking the vendor's real wire format, with the limits and
//! quirks that break naive clients: Salesloft's cost-based rate limit and
//! microsecond timestamps with offsets, HubSpot's 10,000-result search cap
//! and search lag, Kendo's 30-per-minute limit, 5 MB body limit and lost
//! responses, Aloware's unsigned, never-retried deliveries.
//!
//! The simulators are written from the vendors' documentation
//! (`/work/shared/docs/external-apis.md` and the seed guides), not from the
//! bridge's code: they share none of its parsing, so they catch its bugs
//! instead of repeating them.
//!
//! Time runs `time_scale` times faster than real time: rate-limit windows
//! and webhook back-offs are divided by it, and every window is measured on
//! tokio's clock, so tests can pause time instead of sleeping.
//!
//! Under `tokio::time::pause()` every pending tokio timer fires as soon as
//! the runtime waits for a socket, even when the answer is already on its
//! way. The simulators keep no timers of their own for that reason, and a
//! client talking to them under paused time should have no timeout and no
//! idle-connection reaper (`reqwest`: no `.timeout(..)`,
//! `.pool_idle_timeout(None)`), or its timeout will expire at once. The
//! 10 s delivery timeout of the simulators' own webhook senders is measured
//! in real time for the same reason.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kendo_bridge_sim::SimError> {
//! use kendo_bridge_sim::{Dataset, SimOptions, Simulators};
//!
//! let sims = Simulators::start(SimOptions {
//!     time_scale: 30.0,
//!     ..SimOptions::default()
//! })
//! .await?;
//! Dataset::demo(7).load(&sims);
//! println!("Salesloft at {}", sims.salesloft_url());
//! println!("Kendo ingest at {}", sims.kendo.ingest_url());
//! # Ok(()) }
//! ```

pub mod aloware;
pub mod clock;
pub mod dataset;
pub mod hubspot;
pub mod kendo;
mod ratelimit;
pub mod salesloft;
mod server;
pub mod timefmt;
mod util;

use std::net::SocketAddr;
use std::time::Duration;

pub use aloware::{AlowareAuth, AlowareSim};
pub use dataset::Dataset;
pub use hubspot::{HubspotOptions, HubspotSim};
pub use kendo::{KendoOptions, KendoSim};
pub use salesloft::{SalesloftOptions, SalesloftSim};

/// The demo Kendo Push API key.
pub const DEMO_KENDO_KEY: &str = "pk_demo_4f1c2e9a7b3d5f60";
/// The team the demo key belongs to.
pub const DEMO_KENDO_TEAM: &str = "Demo Sales Team";
/// The demo Salesloft API key (`ak_` + 64 hex digits, as Salesloft issues).
pub const DEMO_SALESLOFT_KEY: &str =
    "ak_6f2d0c1e9b8a7f3e5d4c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e";
/// The demo HubSpot private-app token.
pub const DEMO_HUBSPOT_TOKEN: &str = "pat-na1-5d2c7e1a-0b9f-4c3d-8e6a-1f2b3c4d5e6f";

/// Why a simulator could not start or act.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The outgoing HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(reqwest::Error),
    /// A webhook delivery got no HTTP answer.
    #[error("delivery to {url} failed: {source}")]
    Delivery { url: String, source: reqwest::Error },
    /// A delivery got no answer within the sender's timeout.
    #[error("delivery to {url} timed out")]
    TimedOut { url: String },
    /// An option is out of range.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// A mutation named a record the simulator does not have.
    #[error("no such record: {0}")]
    NotFound(String),
}

/// How to start all four simulators at once.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Simulated seconds per real second (1.0 = real time).
    pub time_scale: f64,
    /// Valid Kendo Push API keys and their teams.
    pub kendo_keys: Vec<(String, String)>,
    /// Valid Salesloft API keys.
    pub salesloft_keys: Vec<String>,
    /// Valid HubSpot private-app tokens.
    pub hubspot_tokens: Vec<String>,
    /// How long (simulated) a HubSpot write takes to reach search.
    pub hubspot_search_lag: Duration,
    /// Kendo's body limit in bytes.
    pub kendo_max_body_bytes: usize,
    /// Fixed ports (Salesloft, HubSpot, Kendo); `None` picks free ones.
    pub ports: Option<(u16, u16, u16)>,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            time_scale: 1.0,
            kendo_keys: vec![(DEMO_KENDO_KEY.to_owned(), DEMO_KENDO_TEAM.to_owned())],
            salesloft_keys: vec![DEMO_SALESLOFT_KEY.to_owned()],
            hubspot_tokens: vec![DEMO_HUBSPOT_TOKEN.to_owned()],
            hubspot_search_lag: Duration::from_secs(2),
            kendo_max_body_bytes: kendo::DEFAULT_MAX_BODY_BYTES,
            ports: None,
        }
    }
}

/// All four simulators. Dropping the bundle (and every clone of its
/// handles) shuts the servers down.
#[derive(Clone)]
pub struct Simulators {
    pub salesloft: SalesloftSim,
    pub hubspot: HubspotSim,
    pub kendo: KendoSim,
    pub aloware: AlowareSim,
}

impl Simulators {
    /// Starts Salesloft, HubSpot and Kendo servers and the Aloware sender.
    pub async fn start(options: SimOptions) -> Result<Self, SimError> {
        let (sl_port, hs_port, k_port) = options.ports.unwrap_or((0, 0, 0));
        let local = |port| SocketAddr::from(([127, 0, 0, 1], port));
        let salesloft = SalesloftSim::start(SalesloftOptions {
            time_scale: options.time_scale,
            api_keys: options.salesloft_keys.clone(),
            bind: local(sl_port),
            ..SalesloftOptions::default()
        })
        .await?;
        let hubspot = HubspotSim::start(HubspotOptions {
            time_scale: options.time_scale,
            tokens: options.hubspot_tokens.clone(),
            search_lag: options.hubspot_search_lag,
            bind: local(hs_port),
            ..HubspotOptions::default()
        })
        .await?;
        let kendo = KendoSim::start(KendoOptions {
            time_scale: options.time_scale,
            keys: options.kendo_keys.clone(),
            max_body_bytes: options.kendo_max_body_bytes,
            bind: local(k_port),
            ..KendoOptions::default()
        })
        .await?;
        let aloware = AlowareSim::new()?;
        Ok(Self {
            salesloft,
            hubspot,
            kendo,
            aloware,
        })
    }

    /// Salesloft's API base (requests go to `{base}/v2/...`).
    pub fn salesloft_url(&self) -> String {
        self.salesloft.url()
    }

    /// HubSpot's API base (requests go to `{base}/crm/v3/...`).
    pub fn hubspot_url(&self) -> String {
        self.hubspot.url()
    }

    /// Kendo's base; the ingest path is [`kendo::INGEST_PATH`].
    pub fn kendo_url(&self) -> String {
        self.kendo.url()
    }
}
