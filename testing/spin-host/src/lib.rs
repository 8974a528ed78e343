//! A test host for kendo-bridge's Spin app, for machines without the Spin
//! CLI (CI among them).
//!
//! It runs the built Spin component (`target/spin/wasm32-wasip2/release/
//! kendo_bridge_spin.wasm`, what `spin build` builds), composed with the
//! plugin component as Spin composes `[component.bridge.dependencies]`
//! (wac's plug), the way Spin's HTTP trigger runs it: a fresh instance per request through
//! `wasi:http/incoming-handler`, WASI 0.2, outbound `wasi:http` (to the
//! simulators on 127.0.0.1), and in-test implementations of the two Spin
//! interfaces the app imports: `fermyon:spin/key-value@2.0.0` (one store,
//! `default`, shared by every instance made from one [`SpinApp`] and its
//! [`SpinApp::instance`]s, as Spin shares a store between instances),
//! `fermyon:spin/sqlite@2.0.0` (the `default` database: one SQLite file,
//! a connection of its own per open, as on Spin) and
//! `fermyon:spin/variables@2.0.0`.
//!
//! What it does not model: Spin's manifest checks (allowed outbound hosts,
//! declared variables beyond a missing one answering `undefined`), its
//! key-value backends' consistency, and its cron trigger.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use wasmtime::component::{Component, HasSelf, Linker, Resource, ResourceTable};
use wasmtime::{Engine, Result, Store, bail, format_err};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

pub mod real;

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "spin-imports",
        with: {
            "fermyon:spin/key-value.store": super::KvStore,
            "fermyon:spin/sqlite.connection": super::SqliteConnection,
        },
    });
}

use bindings::fermyon::spin::{key_value, sqlite, variables};

/// An open key-value store: its label.
pub struct KvStore {
    label: String,
}

/// An open connection to the app's `default` SQLite database.
pub struct SqliteConnection {
    conn: rusqlite::Connection,
}

/// The contents of every key-value store, by label, shared by instances.
type Stores = Arc<Mutex<HashMap<String, BTreeMap<String, Vec<u8>>>>>;

/// The built Spin app, ready to answer requests.
#[derive(Clone)]
pub struct SpinApp {
    pre: ProxyPre<State>,
    stores: Stores,
    variables: Arc<HashMap<String, String>>,
    database: Arc<Database>,
    clock: AppClock,
    outbound: Outbound,
    /// What every instance wrote to stderr (the app's log lines), kept
    /// rather than printed so a test's output stays readable.
    stderr: wasmtime_wasi::p2::pipe::MemoryOutputPipe,
}

/// The app's wall clock (`wasi:clocks/wall-clock`, which the app's
/// `SystemTime::now()` reads): real time plus what a test moved it on by,
/// shared by every instance, so a test waits for a lease, a back-off or a
/// pacing slot by moving the clock instead of sleeping.
#[derive(Clone, Default)]
struct AppClock(Arc<std::sync::atomic::AtomicU64>);

impl AppClock {
    fn now(&self) -> std::time::Duration {
        let real = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        real + std::time::Duration::from_millis(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}

impl wasmtime_wasi::HostWallClock for AppClock {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_millis(1)
    }

    fn now(&self) -> std::time::Duration {
        AppClock::now(self)
    }
}

/// The app's `default` SQLite database: a file, so that every instance's
/// connection is a real concurrent one, as on a Spin node (or several
/// sharing one database).
struct Database {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

/// Per-request state, as Spin keeps it per instance.
struct State {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    stores: Stores,
    variables: Arc<HashMap<String, String>>,
    database: Arc<Database>,
    outbound: Outbound,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

/// The hosts the app may call, as spin.toml's `allowed_outbound_hosts`:
/// `None` allows every host; otherwise a request to an authority not
/// listed is refused before it leaves, with `HttpRequestDenied`, as Spin
/// refuses it.
#[derive(Clone, Default)]
struct Outbound(Arc<Mutex<Option<Vec<String>>>>);

impl wasmtime_wasi_http::WasiHttpHooks for Outbound {
    fn send_request(
        &mut self,
        request: hyper::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        hyper::Response<wasmtime_wasi_http::WasiBody>,
                        Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        _ = fut;
        let authority = request
            .uri()
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default();
        let allowed = match self.0.lock() {
            Ok(list) => list.as_ref().is_none_or(|l| l.contains(&authority)),
            Err(_) => false,
        };
        Box::new(async move {
            use http_body_util::BodyExt;
            if !allowed {
                return Err(wasmtime_wasi_http::Error::HttpRequestDenied);
            }
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                res.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

/// How much of the app's stderr a test host keeps (a log line is about a
/// hundred bytes; a benchmark writes a few thousand).
const STDERR_CAPACITY: usize = 64 * 1024 * 1024;

/// The one store label spin.toml grants the app.
const DEFAULT_STORE: &str = "default";

impl key_value::Host for State {}

impl key_value::HostStore for State {
    fn open(&mut self, label: String) -> Result<Resource<KvStore>, key_value::Error> {
        if label != DEFAULT_STORE {
            return Err(key_value::Error::NoSuchStore);
        }
        self.table
            .push(KvStore { label })
            .map_err(|e| key_value::Error::Other(e.to_string()))
    }

    fn get(
        &mut self,
        store: Resource<KvStore>,
        key: String,
    ) -> Result<Option<Vec<u8>>, key_value::Error> {
        self.with_store(&store, |s| s.get(&key).cloned())
    }

    fn set(
        &mut self,
        store: Resource<KvStore>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), key_value::Error> {
        self.with_store(&store, |s| {
            s.insert(key, value);
        })
    }

    fn delete(&mut self, store: Resource<KvStore>, key: String) -> Result<(), key_value::Error> {
        self.with_store(&store, |s| {
            s.remove(&key);
        })
    }

    fn exists(&mut self, store: Resource<KvStore>, key: String) -> Result<bool, key_value::Error> {
        self.with_store(&store, |s| s.contains_key(&key))
    }

    fn get_keys(&mut self, store: Resource<KvStore>) -> Result<Vec<String>, key_value::Error> {
        self.with_store(&store, |s| s.keys().cloned().collect())
    }

    fn drop(&mut self, store: Resource<KvStore>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}

impl State {
    fn with_store<R>(
        &mut self,
        store: &Resource<KvStore>,
        f: impl FnOnce(&mut BTreeMap<String, Vec<u8>>) -> R,
    ) -> Result<R, key_value::Error> {
        let label = self
            .table
            .get(store)
            .map_err(|e| key_value::Error::Other(e.to_string()))?
            .label
            .clone();
        let mut stores = self
            .stores
            .lock()
            .map_err(|_| key_value::Error::Other("a test thread panicked".into()))?;
        Ok(f(stores.entry(label).or_default()))
    }
}

impl sqlite::Host for State {}

impl sqlite::HostConnection for State {
    fn open(&mut self, database: String) -> Result<Resource<SqliteConnection>, sqlite::Error> {
        if database != DEFAULT_STORE {
            return Err(sqlite::Error::NoSuchDatabase);
        }
        let io = |e: rusqlite::Error| sqlite::Error::Io(e.to_string());
        let conn = rusqlite::Connection::open(&self.database.path).map_err(io)?;
        // Spin's own SQLite waits for a lock the same way.
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(io)?;
        self.table
            .push(SqliteConnection { conn })
            .map_err(|e| sqlite::Error::Io(e.to_string()))
    }

    fn execute(
        &mut self,
        connection: Resource<SqliteConnection>,
        statement: String,
        parameters: Vec<sqlite::Value>,
    ) -> Result<sqlite::QueryResult, sqlite::Error> {
        let conn = &self
            .table
            .get(&connection)
            .map_err(|_| sqlite::Error::InvalidConnection)?
            .conn;
        run_statement(conn, &statement, parameters).map_err(|e| sqlite::Error::Io(e.to_string()))
    }

    fn drop(&mut self, connection: Resource<SqliteConnection>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        Ok(())
    }
}

/// One statement with its parameters, every row it yields read back.
fn run_statement(
    conn: &rusqlite::Connection,
    statement: &str,
    parameters: Vec<sqlite::Value>,
) -> rusqlite::Result<sqlite::QueryResult> {
    use rusqlite::types::{Value as Sql, ValueRef};
    let mut stmt = conn.prepare(statement)?;
    for (i, value) in parameters.into_iter().enumerate() {
        let value = match value {
            sqlite::Value::Integer(v) => Sql::Integer(v),
            sqlite::Value::Real(v) => Sql::Real(v),
            sqlite::Value::Text(v) => Sql::Text(v),
            sqlite::Value::Blob(v) => Sql::Blob(v),
            sqlite::Value::Null => Sql::Null,
        };
        stmt.raw_bind_parameter(i + 1, value)?;
    }
    let columns: Vec<String> = stmt.column_names().iter().map(|c| c.to_string()).collect();
    let mut rows = Vec::new();
    let mut cursor = stmt.raw_query();
    while let Some(row) = cursor.next()? {
        let mut values = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            values.push(match row.get_ref(i)? {
                ValueRef::Integer(v) => sqlite::Value::Integer(v),
                ValueRef::Real(v) => sqlite::Value::Real(v),
                ValueRef::Text(v) => sqlite::Value::Text(String::from_utf8_lossy(v).into_owned()),
                ValueRef::Blob(v) => sqlite::Value::Blob(v.to_vec()),
                ValueRef::Null => sqlite::Value::Null,
            });
        }
        rows.push(sqlite::RowResult { values });
    }
    Ok(sqlite::QueryResult { columns, rows })
}

impl variables::Host for State {
    fn get(&mut self, name: String) -> Result<String, variables::Error> {
        self.variables
            .get(&name)
            .cloned()
            .ok_or(variables::Error::Undefined(name))
    }
}

/// The app with the plugin plugged into its `kendo:bridge` imports.
fn read_built(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        format_err!(
            "cannot read the {what} {}: build it with `./dev lint` (or `spin build`): {e}",
            path.display()
        )
    })
}

fn compose(app: &Path, plugin: &Path) -> Result<Vec<u8>> {
    let app_bytes = read_built(app, "Spin component")?;
    let plugin_bytes = read_built(plugin, "plugin component")?;
    compose_bytes(app_bytes, plugin_bytes)
}

fn compose_bytes(app_bytes: Vec<u8>, plugin_bytes: Vec<u8>) -> Result<Vec<u8>> {
    let mut graph = wac_graph::CompositionGraph::new();
    let app = wac_graph::types::Package::from_bytes("app", None, app_bytes, graph.types_mut())
        .map_err(|e| format_err!("the Spin component: {e:#}"))?;
    let app = graph
        .register_package(app)
        .map_err(|e| format_err!("the Spin component: {e}"))?;
    let plugin =
        wac_graph::types::Package::from_bytes("plugin", None, plugin_bytes, graph.types_mut())
            .map_err(|e| format_err!("the plugin component: {e:#}"))?;
    let plugin = graph
        .register_package(plugin)
        .map_err(|e| format_err!("the plugin component: {e}"))?;
    wac_graph::plug(&mut graph, vec![plugin], app)
        .map_err(|e| format_err!("plugging the plugin into the Spin app: {e:#}"))?;
    graph
        .encode(wac_graph::EncodeOptions::default())
        .map_err(|e| format_err!("encoding the composed Spin app: {e:#}"))
}

/// The composed app compiled, once per process for each pair of files: a
/// test binary loads the same app dozens of times, and composing and
/// compiling it is most of a load's time.
fn compiled(app: &Path, plugin: &Path) -> Result<(Engine, Component)> {
    type Compiled = HashMap<(PathBuf, PathBuf), (Engine, Component)>;
    static COMPILED: std::sync::OnceLock<Mutex<Compiled>> = std::sync::OnceLock::new();
    let cache = COMPILED.get_or_init(Mutex::default);
    let key = (app.to_path_buf(), plugin.to_path_buf());
    if let Some(hit) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(hit.clone());
    }
    let composed = compose(app, plugin)?;
    let engine = Engine::default();
    let component = Component::new(&engine, &composed)
        .map_err(|e| format_err!("cannot load the composed Spin app: {e}"))?;
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, (engine.clone(), component.clone()));
    Ok((engine, component))
}

/// An answer of the app.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl SpinApp {
    /// Where `spin build` (and `./dev test`) leave the component, from the
    /// repository root.
    pub fn built_component() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/spin/wasm32-wasip2/release/kendo_bridge_spin.wasm")
    }

    /// The plugin component the app depends on (spin.toml
    /// `[component.bridge.dependencies]`): the bridge composed with the
    /// default mapper, as the host's build leaves it.
    pub fn built_plugin() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/guest/kendo_bridge_plugin.wasm")
    }

    /// The plugin component alone, importing `kendo:bridge/mapper`, as the
    /// host's build leaves it.
    pub fn built_socket() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/guest/wasm32-wasip2/release/kendo_bridge_guest.wasm")
    }

    /// Loads the app at `app` with the built plugin and a team's `mapper`
    /// plugged into it: what `KENDO_BRIDGE_MAPPER=mapper.wasm spin build`
    /// (or `kendo-bridge plugin compose`) gives Spin.
    pub fn load_with_mapper(
        app: &Path,
        mapper: &Path,
        variables: HashMap<String, String>,
    ) -> Result<SpinApp> {
        let socket = read_built(&SpinApp::built_socket(), "plugin component")?;
        let mapper = std::fs::read(mapper)
            .map_err(|e| format_err!("cannot read the mapper {}: {e}", mapper.display()))?;
        let plugin = kendo_bridge_compose::plug_mapper(&socket, &mapper)
            .map_err(|e| format_err!("plugging the mapper into the plugin: {e}"))?;
        let composed = compose_bytes(read_built(app, "Spin component")?, plugin)?;
        SpinApp::from_composed(&composed, variables)
    }

    /// Loads the app at `app`, composed with the plugin at `plugin` the way
    /// Spin composes a component with its `dependencies`: every import of
    /// the app that the plugin exports (`kendo:bridge/*`) is plugged with
    /// that export (wac's "plug"), the rest stay imports for the host.
    pub fn load(app: &Path, plugin: &Path, variables: HashMap<String, String>) -> Result<SpinApp> {
        let (engine, component) = compiled(app, plugin)?;
        SpinApp::from_compiled(engine, component, variables)
    }

    fn from_composed(composed: &[u8], variables: HashMap<String, String>) -> Result<SpinApp> {
        let engine = Engine::default();
        let component = Component::new(&engine, composed)
            .map_err(|e| format_err!("cannot load the composed Spin app: {e}"))?;
        SpinApp::from_compiled(engine, component, variables)
    }

    fn from_compiled(
        engine: Engine,
        component: Component,
        variables: HashMap<String, String>,
    ) -> Result<SpinApp> {
        let mut linker = Linker::<State>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        bindings::SpinImports::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)?;
        let pre = ProxyPre::new(linker.instantiate_pre(&component)?)?;
        let dir = tempfile::tempdir().map_err(|e| format_err!("a database directory: {e}"))?;
        let path = dir.path().join("sqlite_db.db");
        // WAL, as Spin's local SQLite: readers do not wait for a writer.
        rusqlite::Connection::open(&path)
            .and_then(|c| c.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)))
            .map_err(|e| format_err!("the app's database: {e}"))?;
        Ok(SpinApp {
            pre,
            stores: Arc::default(),
            variables: Arc::new(variables),
            database: Arc::new(Database { path, _dir: dir }),
            clock: AppClock::default(),
            outbound: Outbound::default(),
            stderr: wasmtime_wasi::p2::pipe::MemoryOutputPipe::new(STDERR_CAPACITY),
        })
    }

    /// What the app's instances wrote to stderr so far (its log lines).
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents()).into_owned()
    }

    /// Allows the app's outbound requests only to these authorities
    /// (`host:port`), as spin.toml's `allowed_outbound_hosts`; `None`
    /// allows every one.
    pub fn allow_outbound(&self, authorities: Option<Vec<String>>) {
        if let Ok(mut list) = self.outbound.0.lock() {
            *list = authorities;
        }
    }

    /// Moves the app's clock (every instance's) on by `by`.
    pub fn advance(&self, by: std::time::Duration) {
        self.clock.0.fetch_add(
            u64::try_from(by.as_millis()).unwrap_or(u64::MAX),
            std::sync::atomic::Ordering::SeqCst,
        );
    }

    /// The app's clock now, in milliseconds since the epoch.
    pub fn now_ms(&self) -> i64 {
        i64::try_from(self.clock.now().as_millis()).unwrap_or(i64::MAX)
    }

    /// Another instance of the app sharing this one's key-value store, as
    /// Spin instances on several nodes share one store.
    pub fn instance(&self) -> SpinApp {
        self.clone()
    }

    /// Runs a query on the app's database (for tests to look at its state).
    pub fn query(&self, sql: &str) -> Result<Vec<Vec<String>>> {
        let conn = rusqlite::Connection::open(&self.database.path)
            .map_err(|e| format_err!("the app's database: {e}"))?;
        let result =
            run_statement(&conn, sql, Vec::new()).map_err(|e| format_err!("{sql}: {e}"))?;
        Ok(result
            .rows
            .into_iter()
            .map(|row| {
                row.values
                    .into_iter()
                    .map(|v| match v {
                        sqlite::Value::Integer(v) => v.to_string(),
                        sqlite::Value::Real(v) => v.to_string(),
                        sqlite::Value::Text(v) => v,
                        sqlite::Value::Blob(v) => format!("<{} bytes>", v.len()),
                        sqlite::Value::Null => "NULL".to_string(),
                    })
                    .collect()
            })
            .collect())
    }

    /// The app's `default` SQLite database file (for a host operator
    /// command run against the same database, as on a real deployment).
    pub fn database_path(&self) -> &Path {
        &self.database.path
    }

    /// The keys of the `default` store and their values, as text.
    pub fn keys(&self) -> BTreeMap<String, String> {
        let stores = self.stores.lock().unwrap_or_else(|p| p.into_inner());
        stores
            .get(DEFAULT_STORE)
            .map(|s| {
                s.iter()
                    .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Serves the app over HTTP/1 on `listener` (for a browser), each
    /// request answered by a fresh instance, until the task is dropped.
    pub async fn serve(self, listener: tokio::net::TcpListener) {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let app = self.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let app = app.clone();
                        async move {
                            let method = req.method().as_str().to_string();
                            let path = req
                                .uri()
                                .path_and_query()
                                .map_or("/".to_string(), |p| p.as_str().to_string());
                            let headers: Vec<(String, String)> = req
                                .headers()
                                .iter()
                                .filter_map(|(k, v)| {
                                    Some((k.to_string(), v.to_str().ok()?.to_string()))
                                })
                                .collect();
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let pairs: Vec<(&str, &str)> = headers
                                .iter()
                                .map(|(k, v)| (k.as_str(), v.as_str()))
                                .collect();
                            let (status, answer_headers, text) =
                                match app.request_full(&method, &path, &pairs, body).await {
                                    Ok((answer, headers)) => (answer.status, headers, answer.body),
                                    Err(e) => (500, Vec::new(), e.to_string()),
                                };
                            let mut response = hyper::Response::builder().status(status);
                            for (name, value) in answer_headers {
                                response = response.header(name, value);
                            }
                            response.body(Full::new(Bytes::from(text)))
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(wasmtime_wasi_http::io::TokioIo::new(stream), service)
                    .await;
            });
        }
    }

    /// One request, answered by a fresh instance.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<Answer> {
        Ok(self.request_full(method, path, headers, body).await?.0)
    }

    /// One request, with the answer's content type.
    async fn request_full(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<(Answer, Vec<(String, String)>)> {
        let mut builder = hyper::Request::builder()
            .method(method)
            .uri(format!("http://spin.test{path}"));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder
            .body(Full::new(body.into()).map_err(|e: Infallible| -> ErrorCode { match e {} }))?;
        let mut store = Store::new(
            self.pre.engine(),
            State {
                wasi: WasiCtx::builder()
                    .stderr(self.stderr.clone())
                    .wall_clock(self.clock.clone())
                    .build(),
                http: WasiHttpCtx::new(),
                table: ResourceTable::new(),
                stores: self.stores.clone(),
                variables: self.variables.clone(),
                database: self.database.clone(),
                outbound: self.outbound.clone(),
            },
        );
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let incoming = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        let pre = self.pre.clone();
        let task = tokio::task::spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, incoming, out)
                .await
        });
        let response = match receiver.await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => bail!("the app answered with an error: {e:?}"),
            Err(_) => {
                let e = match task.await {
                    Ok(Ok(())) => format_err!("the app never set a response"),
                    Ok(Err(e)) => format_err!("the app trapped: {e:?}"),
                    Err(e) => format_err!("the app's task failed: {e}"),
                };
                return Err(e);
            }
        };
        let status = response.status().as_u16();
        let answer_headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_string())))
            .collect();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format_err!("reading the app's answer: {e:?}"))?
            .to_bytes();
        // The guest may still be finishing; its result says if it trapped.
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => bail!("the app trapped after answering: {e:?}"),
            Err(e) => bail!("the app's task failed: {e}"),
        }
        Ok((
            Answer {
                status,
                body: String::from_utf8_lossy(&body).into_owned(),
            },
            answer_headers,
        ))
    }
}
