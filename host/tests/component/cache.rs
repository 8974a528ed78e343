//! The compiled component is cached on disk: the second start loads it
//! instead of compiling, and a damaged cache file costs a compile, never a
//! failure.

use std::path::PathBuf;

use crate::support::{default_rules, map_salesloft, read_fixture, salesloft_inputs};
use kendo_bridge::plugin::{CacheLocation, Plugin, types::SyncMethod};

fn cached_artifacts(dir: &tempfile::TempDir) -> Vec<PathBuf> {
    std::fs::read_dir(dir.path())
        .expect("the cache directory exists")
        .map(|entry| entry.expect("an entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "cwasm"))
        .collect()
}

fn load(dir: &tempfile::TempDir) -> Plugin {
    Plugin::from_bytes(
        Plugin::embedded_bytes(),
        "(built in)",
        &CacheLocation::Dir(dir.path().to_path_buf()),
    )
    .expect("the component loads")
}

/// The plugin maps the seed Salesloft call.
fn assert_maps(plugin: &Plugin) {
    let mut instance = plugin.instance().expect("instantiates");
    let mut inputs = salesloft_inputs(read_fixture("seed-examples/inputs/salesloft-call.json"));
    inputs.user = Some(read_fixture("seed-examples/inputs/salesloft-user.json"));
    let decision = map_salesloft(
        &mut instance,
        &inputs,
        &default_rules(),
        SyncMethod::Polling,
    );
    assert!(matches!(decision, Ok(Ok(_))), "{decision:?}");
}

#[test]
fn a_second_load_comes_from_the_on_disk_cache() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = load(&dir);
    assert!(!first.load_stats().from_cache, "nothing was cached yet");
    assert_eq!(cached_artifacts(&dir).len(), 1, "one artifact written");
    let second = load(&dir);
    assert!(second.load_stats().from_cache, "the artifact was reused");
    assert_maps(&second);
}

#[test]
fn a_damaged_cache_file_is_replaced_by_a_fresh_compile() {
    let dir = tempfile::tempdir().expect("temp dir");
    load(&dir);
    let artifacts = cached_artifacts(&dir);
    let [artifact] = artifacts.as_slice() else {
        panic!("expected one artifact, found {artifacts:?}");
    };
    std::fs::write(artifact, b"not a compiled component").expect("damaged");

    let recompiled = load(&dir);
    assert!(
        !recompiled.load_stats().from_cache,
        "the damaged file was not used"
    );
    assert_maps(&recompiled);
    assert!(
        load(&dir).load_stats().from_cache,
        "the damaged file was rewritten with a good artifact"
    );
}
