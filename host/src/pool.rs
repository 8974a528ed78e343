//! Plugin instances for async code.
//!
//! A plugin call is synchronous and, when the guest writes to stderr (as a
//! panic does), wasmtime-wasi's sync bindings block on tokio internally,
//! which must not happen on an async worker thread. So every call runs on
//! tokio's blocking pool, on an instance taken from a small free list: a
//! live instance costs microseconds per call, a fresh one tens of them.

use std::sync::{Arc, Mutex};

use wasmtime::Store;

use crate::plugin::{Bridge, HostState, Instance, Plugin, PluginError};

/// A shareable handle that runs plugin calls off the async threads.
#[derive(Clone)]
pub struct PluginPool {
    plugin: Plugin,
    idle: Arc<Mutex<Vec<Instance>>>,
}

impl PluginPool {
    /// Wraps a compiled plugin.
    pub fn new(plugin: Plugin) -> PluginPool {
        PluginPool {
            plugin,
            idle: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The compiled plugin.
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// Runs one plugin call. A trap is returned as
    /// [`PluginError::Trap`]; the instance replaces itself, so the next call
    /// works.
    pub async fn call<R, F>(&self, f: F) -> Result<R, PluginError>
    where
        R: Send + 'static,
        F: FnOnce(&Bridge, &mut Store<HostState>) -> wasmtime::Result<R> + Send + 'static,
    {
        let pool = self.clone();
        tokio::task::spawn_blocking(move || pool.call_here(f))
            .await
            .map_err(|e| PluginError::Trap {
                message: format!("plugin task interrupted: {e}"),
            })?
    }

    /// Runs one plugin call on this thread (not on an async worker).
    pub fn call_here<R>(
        &self,
        f: impl FnOnce(&Bridge, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        let taken = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut instance = match taken {
            Some(instance) => instance,
            None => self.plugin.instance()?,
        };
        let result = instance.call(f);
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(instance);
        result
    }
}
