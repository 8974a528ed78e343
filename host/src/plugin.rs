//! The plugin runtime: loads the `kendo:bridge/bridge` component into
//! wasmtime and runs calls on it.
//!
//! Every decision about a record (read a page, map a call, build a payload,
//! verify a signature) is a call into the component. The host compiles the
//! component once per process, keeps the compiled artifact on disk so the
//! next start skips Cranelift, and hands out cheap [`Instance`]s.
//!
//! # Calling the plugin
//!
//! ```no_run
//! use kendo_bridge::plugin::{Plugin, salesloft::CallInputs, types};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let plugin = Plugin::embedded()?;
//! let mut instance = plugin.instance()?;
//! let inputs = CallInputs {
//!     call: std::fs::read_to_string("call.json")?,
//!     user: None,
//!     sentences: Vec::new(),
//!     call_data_record: None,
//! };
//! let rules = types::Rules {
//!     title_template: None,
//!     min_duration_seconds: 0,
//!     allowed_dispositions: Vec::new(),
//!     rep_directory: Vec::new(),
//! };
//! let decision = instance.call(|bridge, store| {
//!     bridge
//!         .kendo_bridge_salesloft()
//!         .call_map_call(store, &inputs, &rules, types::SyncMethod::Polling)
//! })?;
//! # Ok(()) }
//! ```
//!
//! # Traps
//!
//! A guest panic, an out-of-bounds access or a call that runs past
//! [`CALL_TIME_LIMIT`] is a trap: [`Instance::call`] returns
//! [`PluginError::Trap`] with the guest's panic message, and the poisoned
//! instance is replaced before the next call. A trap costs one record, never
//! the host.
//!
//! # Async callers
//!
//! The runtime is synchronous. WASI's synchronous bindings block on a tokio
//! handle internally, which panics on a thread that is already driving a
//! tokio runtime: async code must call the plugin from
//! `tokio::task::spawn_blocking` or `tokio::task::block_in_place`.

use kendo_bridge_core::decision::{BuildProblem, InputProblem};
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use kendo_bridge_compose::is_allowed_import;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Bindings generated from `wit/` for the `bridge` world.
pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "bridge",
    });
}

/// The world's interfaces: the records, variants and enums the plugin
/// takes and returns. Also re-exported at this module's root.
pub mod api {
    pub use super::bindings::exports::kendo::bridge::{
        aloware, hubspot, kendo, salesloft, signatures, types,
    };
}

pub use api::{aloware, hubspot, kendo, salesloft, signatures, types};
pub use bindings::{Bridge, BridgePre};

/// The built-in component: `guest/` composed with `default-mapper/` by
/// `build.rs`.
static EMBEDDED_COMPONENT: &[u8] = include_bytes!(env!("KENDO_BRIDGE_COMPONENT"));

/// `guest/` alone, importing `kendo:bridge/mapper`: what a team's mapper is
/// plugged into.
static SOCKET_COMPONENT: &[u8] = include_bytes!(env!("KENDO_BRIDGE_SOCKET_COMPONENT"));

/// The default mapper (`default-mapper/`), for a whole-bridge `--plugin`
/// that still imports a mapper.
static DEFAULT_MAPPER: &[u8] = include_bytes!(env!("KENDO_BRIDGE_DEFAULT_MAPPER"));

/// How long one plugin call may run before it is stopped as a trap. The
/// slowest real call (a 5 MB transcript) takes a few tens of milliseconds.
pub const CALL_TIME_LIMIT: Duration = Duration::from_secs(10);

/// Largest linear memory one instance may grow to.
const MEMORY_LIMIT_BYTES: usize = 512 << 20;

/// How much of the guest's stderr is kept; a panic message is far smaller.
const STDERR_CAPACITY: usize = 1 << 20;

/// The epoch ticks every `EPOCH_TICK`; a call's deadline is counted in ticks.
const EPOCH_TICK: Duration = Duration::from_millis(100);

/// What a mapper (or a `--plugin` component) may import, by interface (any
/// version): standard streams (kept in memory, for panic messages), an
/// empty environment, exit, a clock fixed at [`FIXED_CLOCK_UNIX_SECONDS`]
/// and randomness from a fixed seed. What a `std` Rust component or a
/// JavaScript or Python runtime links even when pure; nothing here reaches
/// outside the process, and the same call always gets the same answer.
pub use kendo_bridge_compose::ALLOWED_IMPORTS;

/// The wall clock a mapper reads: 2026-01-01T00:00:00Z, always. Its
/// monotonic clock stands still too.
pub const FIXED_CLOCK_UNIX_SECONDS: u64 = 1_767_225_600;

/// The seed of a mapper's randomness: the same numbers on every instance.
pub const RANDOM_SEED: u64 = 0x6b65_6e64_6f5f_6272;

/// The environment variable that overrides where compiled components are
/// cached.
pub const CACHE_DIR_ENV: &str = "KENDO_BRIDGE_CACHE_DIR";

/// Why the plugin could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The wasmtime engine could not be configured.
    #[error("could not start the WebAssembly engine: {message}")]
    Engine { message: String },
    /// A component file could not be read.
    #[error("could not read the plugin {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The bytes are not a valid component, or Cranelift rejected them.
    #[error("could not compile the plugin {origin}: {message}")]
    Compile { origin: String, message: String },
    /// The component does not implement the `kendo:bridge/bridge` world, or
    /// asks for an import the host does not provide.
    #[error("the plugin {origin} does not fit the kendo:bridge/bridge world: {message}")]
    Link { origin: String, message: String },
    /// The component imports an interface outside [`ALLOWED_IMPORTS`]: a
    /// mapper gets no files or network, a fixed clock and seeded randomness.
    #[error(
        "{origin} imports {imports}, which a mapper or plugin may not use: they are pure (no \
         files, no network; a fixed clock and seeded randomness); only {allowed} may be \
         imported (the built-in plugin imports nothing)"
    )]
    Forbidden {
        origin: String,
        imports: String,
        allowed: String,
    },
    /// The mapper could not be plugged into the bridge.
    #[error("could not use the mapper {origin}: {source}")]
    Compose {
        origin: String,
        #[source]
        source: crate::compose::ComposeError,
    },
    /// A fresh instance could not be created.
    #[error("could not instantiate the plugin: {message}")]
    Instantiate { message: String },
    /// The guest trapped (panicked, accessed memory out of bounds, ran past
    /// [`CALL_TIME_LIMIT`], ...). The instance has been replaced.
    #[error("{message}")]
    Trap { message: String },
    /// The compiled-component cache could not be read or written. Loading
    /// falls back to compiling, so this only appears in logs.
    #[error("compiled-plugin cache {}: {message}", path.display())]
    Cache { path: PathBuf, message: String },
}

/// Where compiled components are kept between runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheLocation {
    /// `$KENDO_BRIDGE_CACHE_DIR`, else the user's cache directory
    /// (`$XDG_CACHE_HOME/kendo-bridge`, `~/.cache/kendo-bridge`, ...).
    Default,
    /// This directory.
    Dir(PathBuf),
    /// Always compile; never read or write a cache.
    Disabled,
}

/// How a [`Plugin`] was loaded, for `status` and the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadStats {
    /// The compiled artifact came from the on-disk cache.
    pub from_cache: bool,
    /// Time spent compiling or loading the component and linking it.
    pub elapsed: Duration,
}

/// A compiled plugin, cheap to clone, Send + Sync.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
}

struct PluginInner {
    engine: Engine,
    pre: BridgePre<HostState>,
    size: usize,
    origin: String,
    stats: LoadStats,
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin")
            .field("origin", &self.inner.origin)
            .field("size", &self.inner.size)
            .field("stats", &self.inner.stats)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// The default component baked into the binary. Compiled (or loaded from
    /// the cache) once per process; later calls return the same plugin.
    pub fn embedded() -> Result<Plugin, PluginError> {
        static EMBEDDED: OnceLock<Plugin> = OnceLock::new();
        if let Some(plugin) = EMBEDDED.get() {
            return Ok(plugin.clone());
        }
        let plugin = Plugin::from_bytes(EMBEDDED_COMPONENT, "(built in)", &CacheLocation::Default)?;
        // Two threads may race to the first load; both results are equal and
        // the loser's is dropped.
        Ok(EMBEDDED.get_or_init(|| plugin).clone())
    }

    /// The bytes of the default component.
    pub fn embedded_bytes() -> &'static [u8] {
        EMBEDDED_COMPONENT
    }

    /// The bridge component alone, importing `kendo:bridge/mapper`: what a
    /// team's mapper is plugged into.
    pub fn socket_bytes() -> &'static [u8] {
        SOCKET_COMPONENT
    }

    /// A team's own component written against the same world. One that
    /// imports `kendo:bridge/mapper` gets the default mapper.
    pub fn from_file(path: &Path) -> Result<Plugin, PluginError> {
        let bytes = read(path)?;
        let origin = path.display().to_string();
        if imports_mapper(&bytes) {
            let composed = compose_mapper(&bytes, DEFAULT_MAPPER, "(default mapper)")?;
            return Plugin::from_bytes(&composed, &origin, &CacheLocation::Default);
        }
        Plugin::from_bytes(&bytes, &origin, &CacheLocation::Default)
    }

    /// The built-in bridge with a team's mapper (a component exporting
    /// `kendo:bridge/mapper`, see `wit/mapper.wit`) in place of the default
    /// one.
    pub fn with_mapper_file(path: &Path) -> Result<Plugin, PluginError> {
        let bytes = read(path)?;
        Plugin::with_mapper(&bytes, &path.display().to_string(), &CacheLocation::Default)
    }

    /// The built-in bridge with the mapper `bytes`; `origin` names it in
    /// errors.
    pub fn with_mapper(
        bytes: &[u8],
        origin: &str,
        cache: &CacheLocation,
    ) -> Result<Plugin, PluginError> {
        let composed = compose_mapper(SOCKET_COMPONENT, bytes, origin)?;
        Plugin::from_bytes(&composed, origin, cache)
    }

    /// `--plugin` and `--mapper` together: a whole-bridge component (or the
    /// built-in one), with a team's mapper (or the one it comes with).
    pub fn load(plugin: Option<&Path>, mapper: Option<&Path>) -> Result<Plugin, PluginError> {
        match (plugin, mapper) {
            (None, None) => Plugin::embedded(),
            (Some(plugin), None) => Plugin::from_file(plugin),
            (None, Some(mapper)) => Plugin::with_mapper_file(mapper),
            (Some(plugin), Some(mapper)) => {
                let origin = mapper.display().to_string();
                let composed = compose_mapper(&read(plugin)?, &read(mapper)?, &origin)?;
                Plugin::from_bytes(&composed, &origin, &CacheLocation::Default)
            }
        }
    }

    /// Compiles `bytes`, or loads their compiled form from `cache`.
    /// `origin` names the component in errors.
    pub fn from_bytes(
        bytes: &[u8],
        origin: &str,
        cache: &CacheLocation,
    ) -> Result<Plugin, PluginError> {
        let started = Instant::now();
        let engine = shared_engine()?;
        let (component, from_cache) = load_component(&engine, bytes, origin, cache)?;

        let imports: Vec<String> = component
            .component_type()
            .imports(&engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        let forbidden: Vec<&str> = imports
            .iter()
            .map(String::as_str)
            .filter(|name| !is_allowed_import(name))
            .collect();
        if !forbidden.is_empty() {
            return Err(PluginError::Forbidden {
                origin: origin.to_owned(),
                imports: forbidden.join(", "),
                allowed: ALLOWED_IMPORTS.join(", "),
            });
        }
        let mut linker = Linker::<HostState>::new(&engine);
        // A component that imports nothing (the built-in one) is linked with
        // no WASI at all; one that imports only allowed interfaces gets
        // WASI with nothing behind it but in-memory stdio.
        if !imports.is_empty() {
            wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|error| {
                PluginError::Link {
                    origin: origin.to_owned(),
                    message: format!("{error:#}"),
                }
            })?;
        }
        let link_error = |error: wasmtime::Error| PluginError::Link {
            origin: origin.to_owned(),
            message: format!("{error:#}"),
        };
        let instance_pre = linker.instantiate_pre(&component).map_err(link_error)?;
        let pre = BridgePre::new(instance_pre).map_err(link_error)?;

        Ok(Plugin {
            inner: Arc::new(PluginInner {
                engine,
                pre,
                size: bytes.len(),
                origin: origin.to_owned(),
                stats: LoadStats {
                    from_cache,
                    elapsed: started.elapsed(),
                },
            }),
        })
    }

    /// The component's size in bytes (for the benchmark and `status`).
    pub fn component_size(&self) -> usize {
        self.inner.size
    }

    /// Where the component came from: `(built in)` or its path.
    pub fn origin(&self) -> &str {
        &self.inner.origin
    }

    /// How this plugin was loaded.
    pub fn load_stats(&self) -> LoadStats {
        self.inner.stats
    }

    /// A live instance; reuse it for many calls.
    pub fn instance(&self) -> Result<Instance, PluginError> {
        Ok(Instance {
            live: Some(self.instantiate()?),
            plugin: self.clone(),
            call_time_limit: CALL_TIME_LIMIT,
        })
    }

    fn instantiate(&self) -> Result<Live, PluginError> {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        // No preopens, no network, no env, no args: the guest is pure and
        // must stay that way. Its stderr is kept for panic messages; its
        // clocks stand still and its randomness repeats, so a decision
        // depends on the call alone.
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .wall_clock(FixedWallClock)
            .monotonic_clock(FixedMonotonicClock)
            .secure_random(seeded_rng(RANDOM_SEED))
            .insecure_random(seeded_rng(RANDOM_SEED.rotate_left(17)))
            .insecure_random_seed(u128::from(RANDOM_SEED))
            .build();
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            limits: Limits {
                inner: StoreLimitsBuilder::new()
                    .memory_size(MEMORY_LIMIT_BYTES)
                    .build(),
                memory_bytes: 0,
            },
        };
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|state| &mut state.limits);
        store.epoch_deadline_trap();
        // The deadline counts from the epoch now; instantiation runs guest
        // code (initialisers) under it too.
        store.set_epoch_deadline(deadline_ticks(CALL_TIME_LIMIT));
        let bridge =
            self.inner
                .pre
                .instantiate(&mut store)
                .map_err(|error| PluginError::Instantiate {
                    message: format!("{error:#}"),
                })?;
        Ok(Live {
            store,
            bridge,
            stderr,
        })
    }
}

/// What a store carries for the guest: its WASI context (stdio only) and
/// limits.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: Limits,
}

/// The store's limits, counting the linear memory its instances hold (for
/// the benchmark's per-mapper memory figure).
struct Limits {
    inner: StoreLimits,
    memory_bytes: usize,
}

impl wasmtime::ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.inner.memory_growing(current, desired, maximum)?;
        if allowed {
            self.memory_bytes = self.memory_bytes + desired - current;
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A live instance of a [`Plugin`]. `Send`, not `Sync`: one thread at a time.
pub struct Instance {
    plugin: Plugin,
    /// `None` after a trap whose replacement could not be created yet.
    live: Option<Live>,
    call_time_limit: Duration,
}

struct Live {
    store: Store<HostState>,
    bridge: Bridge,
    stderr: MemoryOutputPipe,
}

impl fmt::Debug for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instance")
            .field("plugin", &self.plugin)
            .field("live", &self.live.is_some())
            .finish()
    }
}

impl Instance {
    /// Runs one plugin call. A trap (panic, out-of-bounds, ...) comes back as
    /// `PluginError::Trap { message }` with the guest's panic message, and the
    /// poisoned instance is replaced by a fresh one before the next call: a
    /// trap costs one record, never the host.
    pub fn call<R>(
        &mut self,
        f: impl FnOnce(&Bridge, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        let live = match &mut self.live {
            Some(live) => live,
            None => self.live.insert(self.plugin.instantiate()?),
        };
        live.store
            .set_epoch_deadline(deadline_ticks(self.call_time_limit));
        match f(&live.bridge, &mut live.store) {
            Ok(value) => Ok(value),
            Err(error) => {
                let stderr = live.stderr.contents();
                let message = trap_message(
                    &error,
                    &String::from_utf8_lossy(&stderr),
                    self.call_time_limit,
                );
                // The caller owns the record and reports the failure; this
                // is only the runtime's side of the story.
                tracing::debug!(
                    plugin = %self.plugin.origin(),
                    trap = %message,
                    "the plugin trapped; replacing its instance"
                );
                // A trapped instance refuses every later call ("cannot enter
                // component instance"); if the replacement fails now, the
                // next call tries again.
                self.live = self.plugin.instantiate().ok();
                Err(PluginError::Trap { message })
            }
        }
    }

    /// Changes how long one call may run before it is stopped as a trap
    /// (default [`CALL_TIME_LIMIT`]). The limit is counted in 100 ms epoch
    /// ticks, so a call is stopped between one and two ticks after it.
    pub fn set_call_time_limit(&mut self, limit: Duration) {
        self.call_time_limit = limit;
    }

    /// The linear memory the live instance holds, in bytes (every memory of
    /// every core instance in it: the bridge's and the mapper's).
    pub fn memory_bytes(&self) -> usize {
        self.live
            .as_ref()
            .map_or(0, |live| live.store.data().limits.memory_bytes)
    }

    /// The plugin this instance runs.
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }
}

/// Describes a failed call in plain words: the guest's panic message and
/// where it panicked when its stderr shows one, otherwise the trap itself.
fn trap_message(error: &wasmtime::Error, stderr: &str, limit: Duration) -> String {
    if let Some(panic) = last_panic(stderr) {
        return panic;
    }
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => format!(
            "the plugin ran for more than {limit:?} on one call and was stopped \
             (a loop that never ends, or far more work than one record needs)"
        ),
        Some(trap) => format!("the plugin trapped: {trap}"),
        None => format!("{error:#}"),
    }
}

/// Extracts `message (at file:line:col)` from Rust's panic output, which is
/// `thread '<name>' panicked at <file:line:col>:\n<message>\nnote: ...`.
fn last_panic(stderr: &str) -> Option<String> {
    let start = stderr.rfind("panicked at ")?;
    let rest = stderr.get(start + "panicked at ".len()..)?;
    let (location, after) = rest.split_once(":\n")?;
    let message = after.split("\nnote: ").next().unwrap_or(after).trim_end();
    Some(format!("{message} (at {location})"))
}

fn deadline_ticks(limit: Duration) -> u64 {
    // At least one tick: a deadline of 0 would trap at once.
    let ticks = (limit.as_millis() / EPOCH_TICK.as_millis().max(1)).max(1);
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

/// One engine per process: every plugin shares it, and with it the thread
/// that advances the epoch for call deadlines.
fn shared_engine() -> Result<Engine, PluginError> {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    if let Some(engine) = ENGINE.get() {
        return Ok(engine.clone());
    }
    let mut config = Config::new();
    config.epoch_interruption(true);
    let engine = Engine::new(&config).map_err(|error| PluginError::Engine {
        message: format!("{error:#}"),
    })?;
    let mut spawned = false;
    let engine = ENGINE
        .get_or_init(|| {
            spawned = true;
            engine
        })
        .clone();
    if spawned {
        let ticker = engine.clone();
        std::thread::Builder::new()
            .name("kendo-bridge-epoch".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(EPOCH_TICK);
                    ticker.increment_epoch();
                }
            })
            .map_err(|error| PluginError::Engine {
                message: format!("could not start the call-deadline thread: {error}"),
            })?;
    }
    Ok(engine)
}

/// Compiles `bytes`, going through the on-disk cache unless it is disabled.
/// Returns the component and whether it came from the cache.
fn load_component(
    engine: &Engine,
    bytes: &[u8],
    origin: &str,
    cache: &CacheLocation,
) -> Result<(Component, bool), PluginError> {
    let compile = || {
        Component::new(engine, bytes).map_err(|error| PluginError::Compile {
            origin: origin.to_owned(),
            message: format!("{error:#}"),
        })
    };
    let Some(dir) = cache_dir(cache) else {
        return Ok((compile()?, false));
    };
    let path = dir.join(cache_file_name(engine, bytes));
    if path.is_file() {
        match deserialize_cached(engine, &path) {
            Ok(component) => return Ok((component, true)),
            Err(error) => tracing::warn!(%error, "ignoring the cached compiled plugin"),
        }
    }
    let component = compile()?;
    if let Err(error) = write_cache(&dir, &path, &component) {
        tracing::warn!(%error, "could not cache the compiled plugin; the next start compiles again");
    }
    prune_stale_artifacts(&dir, &path);
    Ok((component, false))
}

fn read(path: &Path) -> Result<Vec<u8>, PluginError> {
    fs::read(path).map_err(|source| PluginError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn compose_mapper(bridge: &[u8], mapper: &[u8], origin: &str) -> Result<Vec<u8>, PluginError> {
    crate::compose::plug_mapper(bridge, mapper).map_err(|source| PluginError::Compose {
        origin: origin.to_owned(),
        source,
    })
}

/// Whether a component imports `kendo:bridge/mapper` (any version), read
/// from its own import section (not its nested components').
fn imports_mapper(bytes: &[u8]) -> bool {
    use wasmparser::{Parser, Payload};
    // `parse_all` walks nested modules and components too; each ends with
    // its own `End`.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload {
            Ok(Payload::ModuleSection { .. } | Payload::ComponentSection { .. }) => depth += 1,
            Ok(Payload::End(_)) => depth = depth.saturating_sub(1),
            Ok(Payload::ComponentImportSection(imports)) if depth == 0 => {
                let mapper = imports.into_iter().flatten().any(|import| {
                    let name = import.name.name;
                    name.split('@').next() == Some("kendo:bridge/mapper")
                });
                if mapper {
                    return true;
                }
            }
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

/// A wall clock stopped at [`FIXED_CLOCK_UNIX_SECONDS`].
struct FixedWallClock;

impl wasmtime_wasi::HostWallClock for FixedWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::from_secs(FIXED_CLOCK_UNIX_SECONDS)
    }
}

/// A monotonic clock that never moves.
struct FixedMonotonicClock;

impl wasmtime_wasi::HostMonotonicClock for FixedMonotonicClock {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Random bytes that repeat from `seed`: 4 KiB of SplitMix64 output, then
/// again from the start. Plenty for a language runtime's hash seeds and
/// ids, and the same on every instance.
fn seeded_rng(seed: u64) -> wasmtime_wasi::Deterministic {
    let mut state = seed;
    let mut bytes = Vec::with_capacity(4096);
    while bytes.len() < 4096 {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        bytes.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    wasmtime_wasi::Deterministic::new(bytes)
}

/// Compiled artifacts untouched for this long belong to components or
/// wasmtime versions no longer in use (a live one is rewritten on its next
/// start), so each new build does not leave megabytes behind for good.
const STALE_ARTIFACT_AGE: Duration = Duration::from_secs(14 * 24 * 60 * 60);

fn prune_stale_artifacts(dir: &Path, keep: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_artifact = path
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.starts_with("component-") && name.ends_with(".cwasm"));
        let stale = entry
            .metadata()
            .and_then(|metadata| metadata.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age > STALE_ARTIFACT_AGE);
        if is_artifact && stale && path != keep {
            let _ignored = fs::remove_file(&path);
        }
    }
}

fn deserialize_cached(engine: &Engine, path: &Path) -> Result<Component, PluginError> {
    // SAFETY: `deserialize_file` trusts its input to be wasmtime's own
    // output. The path is derived from a SHA-256 of the component and the
    // engine's compatibility hash, inside a directory this process family
    // creates owner-only, and files appear there only by an atomic rename of
    // what `Component::serialize` wrote. Wasmtime still checks the header,
    // version and engine settings and errors on a mismatch, and any error
    // falls back to compiling.
    unsafe { Component::deserialize_file(engine, path) }.map_err(|error| PluginError::Cache {
        path: path.to_path_buf(),
        message: format!("{error:#}"),
    })
}

fn write_cache(dir: &Path, path: &Path, component: &Component) -> Result<(), PluginError> {
    let cache_error = |message: String| PluginError::Cache {
        path: path.to_path_buf(),
        message,
    };
    let serialized = component
        .serialize()
        .map_err(|error| cache_error(format!("{error:#}")))?;
    create_private_dir(dir).map_err(|error| cache_error(error.to_string()))?;
    let temp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let written = fs::File::create(&temp)
        .and_then(|mut file| {
            file.write_all(&serialized)?;
            file.sync_all()
        })
        .and_then(|()| fs::rename(&temp, path));
    if let Err(error) = written {
        let _ignored = fs::remove_file(&temp);
        return Err(cache_error(error.to_string()));
    }
    Ok(())
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

fn cache_dir(cache: &CacheLocation) -> Option<PathBuf> {
    match cache {
        CacheLocation::Disabled => None,
        CacheLocation::Dir(dir) => Some(dir.clone()),
        CacheLocation::Default => default_cache_dir(),
    }
}

/// `$KENDO_BRIDGE_CACHE_DIR`, else the platform's per-user cache directory.
pub fn default_cache_dir() -> Option<PathBuf> {
    let from_env = |name: &str| {
        std::env::var_os(name)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = from_env(CACHE_DIR_ENV) {
        return Some(dir);
    }
    let base = if cfg!(target_os = "macos") {
        from_env("HOME").map(|home| home.join("Library").join("Caches"))
    } else if cfg!(windows) {
        from_env("LOCALAPPDATA")
    } else {
        from_env("XDG_CACHE_HOME").or_else(|| from_env("HOME").map(|home| home.join(".cache")))
    };
    base.map(|base| base.join("kendo-bridge"))
}

/// `component-<sha256>.cwasm`, where the hash covers the component bytes
/// and the engine's compatibility hash (wasmtime's version and every
/// setting that changes compiled code), so a new component or a new
/// wasmtime never picks up a stale artifact.
fn cache_file_name(engine: &Engine, bytes: &[u8]) -> String {
    use std::hash::Hash;

    struct DigestHasher<'a>(&'a mut Sha256);
    impl std::hash::Hasher for DigestHasher<'_> {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }

    let mut digest = Sha256::new();
    digest.update(bytes);
    engine
        .precompile_compatibility_hash()
        .hash(&mut DigestHasher(&mut digest));
    let hash = digest.finalize();
    let hex: String = hash.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("component-{hex}.cwasm")
}

// The generated error types (`input-error`, `build-error`,
// `signature-error`) already carry a `Display` that prints their `Debug`
// form; `explain()` gives the sentence a person should read.

/// A plain-words description of a guest error; see `explain()`.
pub struct Explained<'a, T>(&'a T);

impl types::InputError {
    /// What is wrong with the input, naming the JSON path.
    pub fn explain(&self) -> Explained<'_, Self> {
        Explained(self)
    }
}

impl fmt::Display for Explained<'_, types::InputError> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        InputProblem::from(self.0).fmt(f)
    }
}

impl From<&types::InputError> for InputProblem {
    fn from(error: &types::InputError) -> InputProblem {
        use types::InputError;
        match error.clone() {
            InputError::InvalidJson(message) => InputProblem::InvalidJson(message),
            InputError::MissingField(path) => InputProblem::MissingField(path),
            InputError::WrongType(p) => InputProblem::WrongType {
                field: p.field,
                detail: p.detail,
            },
            InputError::InvalidValue(p) => InputProblem::InvalidValue {
                field: p.field,
                detail: p.detail,
            },
            InputError::TooLarge(size) => InputProblem::TooLarge {
                size: size.size,
                limit: size.limit,
            },
        }
    }
}

impl kendo::BuildError {
    /// Why the call cannot become a Kendo payload, naming the payload field.
    pub fn explain(&self) -> Explained<'_, Self> {
        Explained(self)
    }
}

impl fmt::Display for Explained<'_, kendo::BuildError> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        BuildProblem::from(self.0).fmt(f)
    }
}

impl From<&kendo::BuildError> for BuildProblem {
    fn from(error: &kendo::BuildError) -> BuildProblem {
        use kendo::BuildError;
        match error.clone() {
            BuildError::NoMedia => BuildProblem::NoMedia,
            BuildError::MissingRepEmail => BuildProblem::MissingRepEmail,
            BuildError::InvalidRepEmail(email) => BuildProblem::InvalidRepEmail(email),
            BuildError::InvalidCallDate(date) => BuildProblem::InvalidCallDate(date),
            BuildError::TooLarge(size) => BuildProblem::TooLarge {
                size: size.size,
                limit: size.limit,
            },
        }
    }
}

impl signatures::SignatureError {
    /// Why the request is not trusted, naming the header.
    pub fn explain(&self) -> Explained<'_, Self> {
        Explained(self)
    }
}

impl fmt::Display for Explained<'_, signatures::SignatureError> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use signatures::SignatureError;
        match self.0 {
            SignatureError::MissingHeader(name) => write!(f, "the `{name}` header is missing"),
            SignatureError::MalformedHeader(detail) => write!(f, "a header is malformed: {detail}"),
            SignatureError::Mismatch => {
                f.write_str("the signature does not match the body and secret")
            }
            SignatureError::Stale(staleness) => {
                let now = i128::from(staleness.now_ms);
                let age_s = (now - i128::from(staleness.timestamp_ms)) / 1000;
                let when = if age_s >= 0 {
                    format!("{age_s} s old")
                } else {
                    format!("{} s in the future", -age_s)
                };
                write!(
                    f,
                    "the request timestamp ({} ms) is {when}, outside the {} s tolerance",
                    staleness.timestamp_ms,
                    staleness.tolerance_ms / 1000
                )
            }
            SignatureError::InvalidSecret(detail) => {
                write!(f, "the configured secret cannot be used: {detail}")
            }
        }
    }
}

impl fmt::Display for types::SkipCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use types::SkipCode;
        f.write_str(match self {
            SkipCode::NotCompleted => "not-completed",
            SkipCode::NoMedia => "no-media",
            SkipCode::BelowMinimumDuration => "below-minimum-duration",
            SkipCode::DispositionFiltered => "disposition-filtered",
            SkipCode::UnknownRep => "unknown-rep",
            SkipCode::InvalidRepEmail => "invalid-rep-email",
            SkipCode::NotACall => "not-a-call",
            SkipCode::Archived => "archived",
            SkipCode::ByMapper => "by-mapper",
        })
    }
}

impl fmt::Display for types::SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "skipped ({}): {}", self.code, self.detail)
    }
}

impl fmt::Display for types::WaitCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use types::WaitCode;
        f.write_str(match self {
            WaitCode::RecordingProcessing => "recording-processing",
            WaitCode::TranscriptPending => "transcript-pending",
            WaitCode::InProgress => "in-progress",
            WaitCode::ByMapper => "by-mapper",
        })
    }
}

impl fmt::Display for types::WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "waiting ({}): {}", self.code, self.detail)
    }
}

impl fmt::Display for aloware::IgnoreCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use aloware::IgnoreCode;
        f.write_str(match self {
            IgnoreCode::TestPayload => "test-payload",
            IgnoreCode::NotACall => "not-a-call",
            IgnoreCode::UnknownEvent => "unknown-event",
        })
    }
}

impl fmt::Display for aloware::IgnoreReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ignored ({}): {}", self.code, self.detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_is_shareable_and_instance_can_move_between_threads() {
        fn shareable<T: Send + Sync + Clone>() {}
        fn movable<T: Send>() {}
        shareable::<Plugin>();
        movable::<Instance>();
    }

    #[test]
    fn panic_output_becomes_message_and_location() {
        let stderr = "\nthread '<unnamed>' panicked at guest/src/salesloft.rs:37:9:\n\
                      not yet implemented\nnote: run with `RUST_BACKTRACE=1` environment \
                      variable to display a backtrace\n";
        assert_eq!(
            last_panic(stderr).as_deref(),
            Some("not yet implemented (at guest/src/salesloft.rs:37:9)")
        );
    }

    #[test]
    fn multi_line_panic_message_is_kept_whole() {
        let stderr = "thread 'main' panicked at src/lib.rs:1:1:\nfirst line\nsecond line\n";
        assert_eq!(
            last_panic(stderr).as_deref(),
            Some("first line\nsecond line (at src/lib.rs:1:1)")
        );
    }

    #[test]
    fn stderr_without_a_panic_gives_no_panic_message() {
        assert_eq!(last_panic("some debug output\n"), None);
    }

    #[test]
    fn skip_and_wait_codes_display_in_kebab_case() {
        assert_eq!(types::SkipCode::NoMedia.to_string(), "no-media");
        assert_eq!(
            types::SkipCode::BelowMinimumDuration.to_string(),
            "below-minimum-duration"
        );
        assert_eq!(
            types::WaitCode::RecordingProcessing.to_string(),
            "recording-processing"
        );
        assert_eq!(
            aloware::IgnoreCode::UnknownEvent.to_string(),
            "unknown-event"
        );
    }

    #[test]
    fn input_error_explanation_names_the_json_path() {
        let error = types::InputError::MissingField("recordings[0].url".into());
        assert_eq!(
            error.explain().to_string(),
            "the required field `recordings[0].url` is missing or null"
        );
    }

    #[test]
    fn stale_signature_explanation_gives_age_in_seconds() {
        let error = signatures::SignatureError::Stale(signatures::Staleness {
            timestamp_ms: 1_000_000,
            now_ms: 1_400_000,
            tolerance_ms: 300_000,
        });
        assert_eq!(
            error.explain().to_string(),
            "the request timestamp (1000000 ms) is 400 s old, outside the 300 s tolerance"
        );
    }

    #[test]
    fn cache_file_name_changes_with_the_component_bytes() {
        let engine = Engine::default();
        assert_ne!(
            cache_file_name(&engine, b"one"),
            cache_file_name(&engine, b"two")
        );
        assert_eq!(
            cache_file_name(&engine, b"one"),
            cache_file_name(&engine, b"one")
        );
    }
}
