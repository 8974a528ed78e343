//! Shared by the commands that run the engine or read its state.

use std::path::PathBuf;

use anyhow::Context as _;

use kendo_bridge::clock::Clock;
use kendo_bridge::config::BridgeConfig;
use kendo_bridge::engine::Engine;
use kendo_bridge::store::{SharedStore, Store};

use super::{Failure, Globals};

/// The default configuration file when `--config` is not given.
pub const DEFAULT_CONFIG: &str = "bridge.toml";

impl Globals {
    /// The full `bridge.toml` (`--config`, or `./bridge.toml`).
    pub fn bridge_config(&self) -> Result<BridgeConfig, Failure> {
        let path = self
            .config
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
        if !path.exists() {
            return Err(Failure::usage(anyhow::anyhow!(
                "no configuration at {}: pass --config FILE (see bridge.example.toml) or run `kendo-bridge demo` to see the bridge work without one",
                path.display()
            )));
        }
        BridgeConfig::load(&path).map_err(|e| Failure::usage(e.into()))
    }

    /// Opens the engine for the configuration (reading every secret).
    pub fn engine(&self) -> Result<Engine, Failure> {
        let mut config = self.bridge_config()?;
        // `--plugin` and `--mapper` win over the file's `plugin = ...` and
        // `mapper = ...`.
        let plugin_path = self.plugin.clone().or(config.plugin.take());
        let mapper_path = self.mapper.clone().or(config.mapper.take());
        let plugin = match (&plugin_path, &mapper_path) {
            (None, None) => {
                kendo_bridge::plugin::Plugin::embedded().map_err(|e| Failure::internal(e.into()))?
            }
            _ => kendo_bridge::plugin::Plugin::load(plugin_path.as_deref(), mapper_path.as_deref())
                .map_err(|e| Failure::usage(e.into()))?,
        };
        Engine::open(config, plugin, Clock::system()).map_err(|e| Failure::usage(e.into()))
    }

    /// Opens only the state database named by the configuration (or
    /// `state`), for the read-mostly operator commands: no secret is needed.
    pub fn state(&self, state: Option<PathBuf>) -> Result<SharedStore, Failure> {
        let path = match state {
            Some(path) => path,
            None => self.bridge_config()?.state,
        };
        if !path.exists() {
            return Err(Failure::usage(anyhow::anyhow!(
                "no state database at {}: the bridge has not run with this configuration yet",
                path.display()
            )));
        }
        let store = Store::open(&path)
            .with_context(|| format!("opening {}", path.display()))
            .map_err(Failure::internal)?;
        Ok(SharedStore::new(store))
    }
}

/// A multi-threaded runtime for the engine's commands.
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .map_err(Failure::internal)
}

/// Milliseconds as a person reads them: `42 s`, `3 min 5 s`, `2 h 4 min`.
pub fn human_duration(ms: i64) -> String {
    let s = (ms.max(0) + 999) / 1000;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}
