//! What running the mapping inside the component costs, per record.
//!
//! `cargo bench -p kendo-bridge --bench component`
//!
//! One realistic Salesloft call (a 60-minute transcript: 900 sentences,
//! about 9,000 words, in pages of 100 like the API) and one small call
//! without a transcript, each through `map-call` + `build-ingest`:
//!
//! 1. natively, through `kendo_bridge_guest::Plugin`'s Guest traits (the
//!    very same code, compiled for the host);
//! 2. through the component on one reused `Instance`;
//! 3. through the component with a fresh instance per record.
//!
//! Each figure is the median of several timed batches after a warm-up. The
//! measurement is single-threaded: the sync engine runs one record at a
//! time per instance.

use std::hint::black_box;
use std::time::{Duration, Instant};

use kendo_bridge::plugin::{self as host, CacheLocation, Plugin};
use kendo_bridge_guest as guest;
use kendo_bridge_guest::kendo_api::Guest as _;
use kendo_bridge_guest::salesloft_api::Guest as _;

/// Roughly how long one timed batch runs.
const BATCH_TARGET: Duration = Duration::from_millis(150);
/// Timed batches per measurement; the median is reported.
const BATCHES: usize = 7;
const WARM_UP: Duration = Duration::from_millis(200);
const MAX_BODY_BYTES: u64 = 5_000_000;

const SENTENCES: usize = 900;
const SENTENCES_PER_PAGE: usize = 100;

/// One record's inputs as the host would hold them.
struct Record {
    name: &'static str,
    call: String,
    user: String,
    sentences: Vec<String>,
}

fn call_json(id: u64, recorded: bool) -> String {
    let recordings = if recorded {
        format!(
            r#"[{{"url": "https://recordings.salesloft.example/{id}.mp3", "status": "completed", "recording_status": "completed"}}]"#
        )
    } else {
        r#"[{"url": null, "status": "completed", "recording_status": "completed"}]"#.to_owned()
    };
    format!(
        r#"{{"id": {id}, "to": "+15125550143", "duration": 3600, "disposition": "Connected",
"sentiment": "Interested", "created_at": "2026-04-22T11:30:00.512384-04:00",
"updated_at": "2026-04-22T12:39:12.482913-04:00", "recordings": {recordings},
"user": {{"_href": "https://api.salesloft.com/v2/users/4321", "id": 4321}},
"action": {{"_href": "https://api.salesloft.com/v2/actions/71234908", "id": 71234908}},
"called_person": {{"_href": "https://api.salesloft.com/v2/people/556677", "id": 556677}},
"crm_activity": null, "note": null, "cadence": {{"_href": "https://api.salesloft.com/v2/cadences/1203", "id": 1203}},
"step": null, "task": null}}"#
    )
}

const USER_JSON: &str = r#"{"data": {"id": 4321, "guid": "5f2d7c1e-8a43-4b6e-9d0f-2c1b7a9e4f30",
"name": "Jamie Rivera", "first_name": "Jamie", "last_name": "Rivera",
"email": "jamie@yourco.com", "active": true}}"#;

/// 900 sentences of ten words, four seconds each, in API-shaped pages.
fn sentence_pages() -> Vec<String> {
    const WORDS: [&str; 20] = [
        "pipeline",
        "quarter",
        "renewal",
        "pricing",
        "onboarding",
        "team",
        "ramp",
        "demo",
        "contract",
        "budget",
        "timeline",
        "security",
        "review",
        "follow",
        "up",
        "next",
        "week",
        "proposal",
        "value",
        "question",
    ];
    let pages = SENTENCES.div_ceil(SENTENCES_PER_PAGE);
    (0..pages)
        .map(|page| {
            let first = page * SENTENCES_PER_PAGE;
            let last = (first + SENTENCES_PER_PAGE).min(SENTENCES);
            let sentences: Vec<String> = (first..last)
                .map(|n| {
                    let text: Vec<&str> = (0..10).map(|w| WORDS[(n * 7 + w * 3) % WORDS.len()]).collect();
                    let speaker = if n % 2 == 0 { "att-rep-4321" } else { "att-prospect-556677" };
                    format!(
                        r#"{{"id": "sentence-{n}", "order_number": {order}, "start_time": {start}.0, "end_time": {end}.5, "recording_attendee_id": "{speaker}", "text": "{text}."}}"#,
                        order = n + 1,
                        start = n * 4,
                        end = n * 4 + 3,
                        text = text.join(" ")
                    )
                })
                .collect();
            let next = if page + 1 < pages {
                (page + 2).to_string()
            } else {
                "null".to_owned()
            };
            format!(
                r#"{{"data": [{}], "metadata": {{"paging": {{"per_page": {SENTENCES_PER_PAGE}, "current_page": {}, "next_page": {next}, "prev_page": null}}}}}}"#,
                sentences.join(","),
                page + 1
            )
        })
        .collect()
}

fn records() -> Vec<Record> {
    vec![
        Record {
            name: "60-min call, 900 sentences",
            call: call_json(98765432, true),
            user: USER_JSON.to_owned(),
            sentences: sentence_pages(),
        },
        Record {
            name: "small call, no transcript",
            call: call_json(98765433, true),
            user: USER_JSON.to_owned(),
            sentences: Vec::new(),
        },
    ]
}

fn guest_rules() -> guest::types::Rules {
    guest::types::Rules {
        title_template: None,
        min_duration_seconds: 0,
        allowed_dispositions: Vec::new(),
        rep_directory: Vec::new(),
    }
}

fn host_rules() -> host::types::Rules {
    host::types::Rules {
        title_template: None,
        min_duration_seconds: 0,
        allowed_dispositions: Vec::new(),
        rep_directory: Vec::new(),
    }
}

/// `map-call` + `build-ingest` natively; returns the body length.
fn native(record: &Record) -> usize {
    let inputs = guest::salesloft_api::CallInputs {
        call: record.call.clone(),
        user: Some(record.user.clone()),
        sentences: record.sentences.clone(),
        call_data_record: None,
    };
    let decision =
        guest::Plugin::map_call(inputs, guest_rules(), guest::types::SyncMethod::Polling);
    let Ok(guest::types::Decision::Send(call)) = decision else {
        panic!(
            "{}: natively, the call is not a send: {decision:?}",
            record.name
        );
    };
    let options = guest::kendo_api::PayloadOptions {
        max_body_bytes: MAX_BODY_BYTES,
    };
    match guest::Plugin::build_ingest(call, options) {
        Ok(request) => request.body.len(),
        Err(error) => panic!("{}: natively, build-ingest failed: {error:?}", record.name),
    }
}

/// `map-call` + `build-ingest` through the component; returns the body
/// length.
fn in_component(
    instance: &mut host::Instance,
    record: &Record,
    rules: &host::types::Rules,
) -> usize {
    let inputs = host::salesloft::CallInputs {
        call: record.call.clone(),
        user: Some(record.user.clone()),
        sentences: record.sentences.clone(),
        call_data_record: None,
    };
    let decision = instance.call(|bridge, store| {
        bridge.kendo_bridge_salesloft().call_map_call(
            store,
            &inputs,
            rules,
            host::types::SyncMethod::Polling,
        )
    });
    let Ok(Ok(host::types::Decision::Send(call))) = decision else {
        panic!(
            "{}: in the component, the call is not a send: {decision:?}",
            record.name
        );
    };
    let options = host::kendo::PayloadOptions {
        max_body_bytes: MAX_BODY_BYTES,
    };
    let built = instance.call(|bridge, store| {
        bridge
            .kendo_bridge_kendo()
            .call_build_ingest(store, &call, options)
    });
    match built {
        Ok(Ok(request)) => request.body.len(),
        other => panic!(
            "{}: in the component, build-ingest failed: {other:?}",
            record.name
        ),
    }
}

/// Median time per call of `f`, in microseconds.
fn measure(mut f: impl FnMut() -> usize) -> f64 {
    let warm_up_end = Instant::now() + WARM_UP;
    let mut single = Duration::ZERO;
    let mut runs = 0u32;
    while Instant::now() < warm_up_end || runs == 0 {
        let started = Instant::now();
        black_box(f());
        single += started.elapsed();
        runs += 1;
    }
    let per_call = single / runs;
    let iterations = (BATCH_TARGET.as_nanos() / per_call.as_nanos().max(1)).clamp(1, 1_000_000);
    let iterations = u32::try_from(iterations).unwrap_or(1);
    let mut batches: Vec<f64> = (0..BATCHES)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..iterations {
                black_box(f());
            }
            started.elapsed().as_secs_f64() * 1e6 / f64::from(iterations)
        })
        .collect();
    batches.sort_by(f64::total_cmp);
    batches[BATCHES / 2]
}

/// A warm load of `bytes` through wasmtime's own compiled-code cache, the
/// alternative to the bridge's artifact cache: the median of ten hits.
fn wasmtime_cache_load(bytes: &[u8]) -> std::time::Duration {
    let dir = tempfile::tempdir().expect("a temporary cache directory");
    let mut settings = wasmtime::CacheConfig::new();
    settings.with_directory(dir.path());
    let mut config = wasmtime::Config::new();
    config.epoch_interruption(true);
    config.cache(Some(
        wasmtime::Cache::new(settings).expect("wasmtime's cache"),
    ));
    let engine = wasmtime::Engine::new(&config).expect("an engine");
    wasmtime::component::Component::new(&engine, bytes).expect("the component compiles");
    let mut hits: Vec<_> = (0..10)
        .map(|_| {
            let t = Instant::now();
            wasmtime::component::Component::new(&engine, bytes).expect("a cache hit");
            t.elapsed()
        })
        .collect();
    hits.sort();
    hits[hits.len() / 2]
}

fn main() {
    let started = Instant::now();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let bytes = Plugin::embedded_bytes();

    // Cold: Cranelift compiles the component. Cached: the artifact this
    // process just serialised is loaded back from a fresh cache directory.
    let cold = Plugin::from_bytes(bytes, "(built in)", &CacheLocation::Disabled)
        .expect("the component compiles");
    let cache = tempfile::tempdir().expect("a temporary cache directory");
    let cache_location = CacheLocation::Dir(cache.path().to_path_buf());
    let _writes_the_cache =
        Plugin::from_bytes(bytes, "(built in)", &cache_location).expect("the component compiles");
    let cached = Plugin::from_bytes(bytes, "(built in)", &cache_location)
        .expect("the component loads from the cache");
    assert!(
        cached.load_stats().from_cache,
        "the second load came from the cache"
    );

    let wasmtime_cache = wasmtime_cache_load(bytes);

    let plugin = cold;
    let rules = host_rules();
    let records = records();

    println!("kendo-bridge component benchmark");
    println!(
        "single-threaded measurement (this machine has {cores} core{}); median of {BATCHES} batches after a warm-up",
        if cores == 1 { "" } else { "s" }
    );
    println!(
        "component: {:.1} KB; compile (cold, Cranelift): {:.1} ms; load from the on-disk cache: {:.2} ms",
        plugin.component_size() as f64 / 1024.0,
        plugin.load_stats().elapsed.as_secs_f64() * 1e3,
        cached.load_stats().elapsed.as_secs_f64() * 1e3,
    );
    println!(
        "the same load from wasmtime's own compiled-code cache (`Config::cache`, compile only, no linking): {:.2} ms ({:.2}x ours)",
        wasmtime_cache.as_secs_f64() * 1e3,
        wasmtime_cache.as_secs_f64() / cached.load_stats().elapsed.as_secs_f64()
    );
    println!();
    println!(
        "{:<28} {:>11} {:>12} {:>7} {:>12} {:>7}",
        "record (map-call + build)", "native µs", "reused µs", "x", "fresh µs", "x"
    );

    let mut worst_reused_ratio: f64 = 0.0;
    let mut instance = plugin.instance().expect("the component instantiates");
    for record in &records {
        let native_bytes = native(record);
        let component_bytes = in_component(&mut instance, record, &rules);
        assert_eq!(
            native_bytes, component_bytes,
            "{}: native and component payloads differ in size",
            record.name
        );

        let native_us = measure(|| native(record));
        let reused_us = measure(|| in_component(&mut instance, record, &rules));
        let fresh_us = measure(|| {
            let mut fresh = plugin.instance().expect("the component instantiates");
            in_component(&mut fresh, record, &rules)
        });
        let reused_ratio = reused_us / native_us;
        worst_reused_ratio = worst_reused_ratio.max(reused_ratio);
        println!(
            "{:<28} {:>11.1} {:>12.1} {:>7.2} {:>12.1} {:>7.2}",
            record.name,
            native_us,
            reused_us,
            reused_ratio,
            fresh_us,
            fresh_us / native_us
        );
    }
    println!();
    println!(
        "goal: a reused instance within 3x native: {} (worst {:.2}x)",
        if worst_reused_ratio <= 3.0 {
            "met"
        } else {
            "NOT met"
        },
        worst_reused_ratio
    );
    println!("total run time: {:.1} s", started.elapsed().as_secs_f64());
}
