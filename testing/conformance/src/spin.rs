//! The Spin app, as `spin build` builds it, in the wasmtime test host
//! (`testing/spin-host`): a fresh instance per request, its variables
//! written from the [`Setup`], `POST /tick` with `tick_seconds = 0` (a tick
//! sends what is due and returns).

use std::collections::HashMap;
use std::time::Duration;

use kendo_bridge_sim::{DEMO_KENDO_KEY, DEMO_SALESLOFT_KEY, SimOptions, Simulators};
use kendo_bridge_spin_host::SpinApp;

use crate::{Answer, Driver, Operator, PluginChoice, Sender, Setup, Status, Webhook};

/// The Spin bridge under test.
pub struct SpinDriver {
    sims: Simulators,
    app: SpinApp,
    /// `hubspot_write_back`: the operator's store queues write-backs too.
    write_back: bool,
}

impl SpinDriver {
    /// The app itself, for what only Spin has.
    pub fn app(&self) -> &SpinApp {
        &self.app
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> Result<Answer, String> {
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        self.app
            .request(method, path, &pairs, body)
            .await
            .map(|a| Answer {
                status: a.status,
                body: a.body,
            })
            .map_err(|e| format!("{e:#}"))
    }
}

/// The Spin app's variables for `setup`.
fn variables(setup: &Setup, sims: &Simulators) -> HashMap<String, String> {
    let mut v: HashMap<String, String> = HashMap::new();
    let mut set = |name: &str, value: String| {
        v.insert(name.to_string(), value);
    };
    set("kendo_api_key", DEMO_KENDO_KEY.into());
    set("kendo_url", sims.kendo_url());
    set("tick_seconds", "0".into());
    set("kendo_webhook_secret", crate::KENDO_SECRET.into());
    set(
        "kendo_timeout_seconds",
        setup.kendo_timeout.as_secs().max(1).to_string(),
    );
    set("aloware_secret", crate::ALOWARE_SECRET.into());
    set(
        "aloware_transcript_wait_seconds",
        setup.aloware_transcript_wait.as_secs().to_string(),
    );
    set("rep_directory", crate::rep_directory_json());
    set(
        "min_duration_seconds",
        setup.min_duration_seconds.to_string(),
    );
    if let Some(max) = setup.max_body_bytes {
        set("max_body_bytes", max.to_string());
    }
    if let Some(sl) = &setup.salesloft {
        set("salesloft_secret", crate::SALESLOFT_SECRET.into());
        set("salesloft_api_key", DEMO_SALESLOFT_KEY.into());
        set("salesloft_api_url", sims.salesloft_url());
        set("salesloft_poll", sl.poll.to_string());
        set("salesloft_transcripts", sl.transcripts.to_string());
        set(
            "salesloft_direction_wait_seconds",
            sl.direction_wait.as_secs().to_string(),
        );
    }
    if let Some(hs) = &setup.hubspot {
        set("hubspot_client_secret", crate::HUBSPOT_SECRET.into());
        set("hubspot_token", hs.token.clone());
        set("hubspot_api_url", sims.hubspot_url());
        set("hubspot_poll", hs.poll.to_string());
        set("hubspot_transcripts", hs.transcripts.to_string());
        set("hubspot_write_back", hs.write_back.to_string());
    }
    v
}

impl Driver for SpinDriver {
    const NAME: &'static str = "spin";

    async fn start(setup: Setup) -> SpinDriver {
        let sims = Simulators::start(SimOptions {
            hubspot_search_lag: if setup.hubspot_search_now {
                Duration::ZERO
            } else {
                SimOptions::default().hubspot_search_lag
            },
            ..SimOptions::default()
        })
        .await
        .expect("the simulators start");
        let app = match setup.plugin {
            PluginChoice::BuiltIn => SpinApp::load(
                &SpinApp::built_component(),
                &SpinApp::built_plugin(),
                variables(&setup, &sims),
            ),
            // The built-in bridge with the test mapper that traps on a
            // marked call, as `spin build` plugs a team's mapper in.
            PluginChoice::Trap => SpinApp::load_with_mapper(
                &SpinApp::built_component(),
                &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(
                    "../../target/guest-trap/wasm32-wasip2/release/kendo_bridge_trap_guest.wasm",
                ),
                variables(&setup, &sims),
            ),
        }
        .expect(
            "the built Spin component and plugin compose and load (./dev test builds both first)",
        );
        // The first request applies the schema, so that a scenario's
        // queries find the tables.
        app.request("GET", "/status", &[], "")
            .await
            .expect("the app answers its status");
        let write_back = setup.hubspot.as_ref().is_some_and(|h| h.write_back);
        SpinDriver {
            sims,
            app,
            write_back,
        }
    }

    fn sims(&self) -> &Simulators {
        &self.sims
    }

    async fn try_deliver(&mut self, webhook: Webhook) -> Result<Answer, String> {
        self.request(
            "POST",
            webhook.sender.path(),
            &webhook.headers,
            webhook.body,
        )
        .await
    }

    async fn post_raw(
        &mut self,
        sender: Sender,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Answer {
        self.request("POST", sender.path(), &headers, body)
            .await
            .unwrap_or_else(|e| panic!("spin: the app did not answer: {e}"))
    }

    async fn try_tick(&mut self) -> Result<(), String> {
        let answer = self.request("POST", "/tick", &[], Vec::new()).await?;
        if answer.status != 200 {
            return Err(format!("{}: {}", answer.status, answer.body));
        }
        Ok(())
    }

    fn advance(&mut self, by: Duration) {
        self.app.advance(by);
    }

    fn now_ms(&self) -> i64 {
        self.app.now_ms()
    }

    fn query(&self, sql: &str) -> Vec<Vec<String>> {
        self.app
            .query(sql)
            .unwrap_or_else(|e| panic!("spin: `{sql}`: {e}"))
    }

    fn execute(&self, sql: &str) {
        let conn =
            rusqlite::Connection::open(self.app.database_path()).expect("the app's database opens");
        conn.busy_timeout(Duration::from_secs(10))
            .expect("a busy timeout");
        conn.execute_batch(sql)
            .unwrap_or_else(|e| panic!("spin: `{sql}`: {e}"));
    }

    async fn status(&mut self) -> Status {
        let answer = self
            .request("GET", "/status", &[], Vec::new())
            .await
            .unwrap_or_else(|e| panic!("spin: GET /status: {e}"));
        let json: serde_json::Value =
            serde_json::from_str(&answer.body).expect("GET /status is JSON");
        let mut out = Status::default();
        for (state, n) in json["calls"].as_object().into_iter().flatten() {
            out.states.insert(state.clone(), n.as_i64().unwrap_or(0));
        }
        for p in json["problems"].as_array().into_iter().flatten() {
            out.problems.push(format!(
                "{} {}: {}",
                p["source"].as_str().unwrap_or_default(),
                p["topic"].as_str().unwrap_or_default(),
                p["problem"].as_str().unwrap_or_default()
            ));
        }
        out
    }

    async fn operate(&mut self, op: Operator) {
        // The operator commands run on the host against the app's
        // database (spin/src/lib.rs says so).
        let mut store = kendo_bridge::store::Store::open(self.app.database_path())
            .expect("the host's store opens the Spin app's database");
        if self.write_back {
            store.set_write_back_sources(&["hubspot"]);
        }
        crate::operate_on(&mut store, &op, self.now_ms());
    }

    fn allow_kendo(&mut self, allowed: bool) {
        if allowed {
            self.app.allow_outbound(None);
        } else {
            let others = [self.sims.salesloft.addr(), self.sims.hubspot.addr()]
                .iter()
                .map(|a| a.to_string())
                .collect();
            self.app.allow_outbound(Some(others));
        }
    }
}
