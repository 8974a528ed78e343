//! What a team's mapper costs beside the built-in one: the composed
//! component's size, the host's start-up with it (compiling it, and loading
//! it from the compiled-plugin cache), and per call (`map-call` of one
//! Salesloft call) the time and the linear memory on a reused instance and
//! on a fresh one.
//!
//! `cargo bench -p kendo-bridge --bench mappers` (`./dev bench` builds the
//! example mappers first and names their directory in KENDO_BRIDGE_MAPPERS;
//! without it only the built-in row is printed).

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use kendo_bridge::plugin::{CacheLocation, Instance, Plugin, salesloft, types};

const CALL: &str = include_str!("../../tests/fixtures/seed-examples/inputs/salesloft-call.json");
const USER: &str = include_str!("../../tests/fixtures/seed-examples/inputs/salesloft-user.json");

/// Roughly how long one timed batch runs.
const BATCH_TARGET: Duration = Duration::from_millis(150);
/// Timed batches per measurement; the median is reported.
const BATCHES: usize = 5;

fn rules() -> types::Rules {
    types::Rules {
        title_template: None,
        min_duration_seconds: 0,
        allowed_dispositions: Vec::new(),
        rep_directory: Vec::new(),
    }
}

fn map(instance: &mut Instance, inputs: &salesloft::CallInputs, rules: &types::Rules) {
    let decision = instance.call(|bridge, store| {
        bridge.kendo_bridge_salesloft().call_map_call(
            store,
            inputs,
            rules,
            types::SyncMethod::Polling,
        )
    });
    assert!(matches!(decision, Ok(Ok(_))), "{decision:?}");
    black_box(decision).ok();
}

/// Median time per call of `f`, in microseconds.
fn measure(mut f: impl FnMut()) -> f64 {
    let started = Instant::now();
    f();
    let once = started.elapsed().max(Duration::from_micros(1));
    let iterations =
        u32::try_from((BATCH_TARGET.as_nanos() / once.as_nanos()).clamp(1, 100_000)).unwrap_or(1);
    let mut batches: Vec<f64> = (0..BATCHES)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..iterations {
                f();
            }
            started.elapsed().as_secs_f64() * 1e6 / f64::from(iterations)
        })
        .collect();
    batches.sort_by(f64::total_cmp);
    batches[BATCHES / 2]
}

fn row(name: &str, load: impl Fn(&CacheLocation) -> Plugin) {
    let cold_started = Instant::now();
    let cold = load(&CacheLocation::Disabled);
    let cold_ms = cold_started.elapsed().as_secs_f64() * 1e3;
    let cache = tempfile::tempdir().expect("a temporary cache directory");
    let cache = CacheLocation::Dir(cache.path().to_path_buf());
    let _writes = load(&cache);
    let cached = load(&cache);
    assert!(
        cached.load_stats().from_cache,
        "{name}: loaded from the cache"
    );

    let inputs = salesloft::CallInputs {
        call: CALL.to_owned(),
        user: Some(USER.to_owned()),
        sentences: Vec::new(),
        call_data_record: None,
    };
    let rules = rules();
    let mut instance = cold.instance().expect("instantiates");
    map(&mut instance, &inputs, &rules);
    let reused_us = measure(|| map(&mut instance, &inputs, &rules));
    let reused_memory = instance.memory_bytes();
    let mut fresh_memory = 0;
    let fresh_us = measure(|| {
        let mut fresh = cold.instance().expect("instantiates");
        map(&mut fresh, &inputs, &rules);
        fresh_memory = fresh.memory_bytes();
    });
    println!(
        "{:<22} {:>10.1} {:>12.0} {:>12.1} {:>11.1} {:>10.1} {:>11.1} {:>10.1}",
        name,
        cold.component_size() as f64 / 1024.0,
        cold_ms,
        cached.load_stats().elapsed.as_secs_f64() * 1e3,
        reused_us,
        reused_memory as f64 / (1 << 20) as f64,
        fresh_us,
        fresh_memory as f64 / (1 << 20) as f64,
    );
}

fn main() {
    let started = Instant::now();
    println!("kendo-bridge mapper benchmark: one Salesloft call through map-call");
    println!("(median of {BATCHES} batches; memory is the linear memory the instance holds)");
    println!();
    println!(
        "{:<22} {:>10} {:>12} {:>12} {:>11} {:>10} {:>11} {:>10}",
        "mapper",
        "size KB",
        "compile ms",
        "cached ms",
        "reused µs",
        "reused MB",
        "fresh µs",
        "fresh MB"
    );
    row("built-in (default)", |cache| {
        Plugin::from_bytes(Plugin::embedded_bytes(), "(built in)", cache)
            .expect("the built-in component loads")
    });
    let Some(dir) = std::env::var_os("KENDO_BRIDGE_MAPPERS") else {
        println!();
        println!(
            "the example mappers were not built (./dev bench builds them): only the built-in row"
        );
        return;
    };
    for (lang, name) in [
        ("rust", "rust (route by rep)"),
        ("js", "js (min duration)"),
        ("python", "python (metadata)"),
    ] {
        let path = Path::new(&dir).join(format!("{lang}.wasm"));
        let bytes =
            std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        row(name, |cache| {
            Plugin::with_mapper(&bytes, &path.display().to_string(), cache)
                .unwrap_or_else(|error| panic!("{error}"))
        });
    }
    println!();
    println!(
        "start-up with a mapper is `cached ms` once the first run has compiled it (`compile ms`)"
    );
    println!("total run time: {:.1} s", started.elapsed().as_secs_f64());
}
