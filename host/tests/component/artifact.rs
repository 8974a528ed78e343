//! The release component the binary embeds: small, exporting the whole
//! `kendo:bridge/bridge` world, and importing nothing that reaches the
//! outside world.

use std::collections::BTreeSet;

use wit_component::DecodedWasm;

const MAX_COMPONENT_BYTES: usize = 512 * 1024;

/// Interfaces a pure plugin must not import.
const FORBIDDEN_IMPORTS: [&str; 5] = [
    "wasi:sockets",
    "wasi:filesystem",
    "wasi:clocks",
    "wasi:http",
    "wasi:random",
];

fn component() -> Vec<u8> {
    std::fs::read(env!("KENDO_BRIDGE_COMPONENT")).expect("the release component is built")
}

/// The component's world as `(imports, exports)`, interface names with
/// their package, e.g. `wasi:cli/stderr@0.2.6`.
fn world_interfaces(bytes: &[u8]) -> (BTreeSet<String>, BTreeSet<String>) {
    let decoded = wit_component::decode(bytes).expect("a component wit-component can decode");
    let DecodedWasm::Component(resolve, world) = decoded else {
        panic!("the artifact is a WIT package, not a component");
    };
    let world = &resolve.worlds[world];
    let imports = world
        .imports
        .keys()
        .map(|key| resolve.name_world_key(key))
        .collect();
    let exports = world
        .exports
        .keys()
        .map(|key| resolve.name_world_key(key))
        .collect();
    (imports, exports)
}

#[test]
fn release_component_is_at_most_512_kilobytes() {
    let size = component().len();
    assert!(
        size <= MAX_COMPONENT_BYTES,
        "the component is {size} bytes ({} KB), over {} KB",
        size / 1024,
        MAX_COMPONENT_BYTES / 1024
    );
}

#[test]
fn release_component_imports_no_socket_file_clock_http_or_random_interface() {
    let (imports, _) = world_interfaces(&component());
    let forbidden: Vec<&String> = imports
        .iter()
        .filter(|name| {
            FORBIDDEN_IMPORTS
                .iter()
                .any(|prefix| name.starts_with(&format!("{prefix}/")))
        })
        .collect();
    assert!(
        forbidden.is_empty(),
        "forbidden imports {forbidden:?} among {imports:?}"
    );
}

#[test]
fn release_component_exports_every_bridge_interface() {
    let (_, exports) = world_interfaces(&component());
    for interface in [
        "types",
        "salesloft",
        "hubspot",
        "aloware",
        "kendo",
        "signatures",
    ] {
        let name = format!("kendo:bridge/{interface}@0.1.0");
        assert!(
            exports.contains(&name),
            "{name} is not exported: {exports:?}"
        );
    }
}

/// A component whose world imports `interface` of package `package`, with
/// one function, and exports nothing.
fn component_importing(package: &str, interface: &str) -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    let wit = format!(
        "package {package};\ninterface {interface} {{ probe: func() -> u32; }}\n\
         world plugin {{ import {interface}; }}\n"
    );
    let pkg = resolve
        .push_str("probe.wit", &wit)
        .expect("the probe WIT parses");
    let world = resolve
        .select_world(&[pkg], Some("plugin"))
        .expect("the probe world");
    // A core module importing the function under its canonical name, with
    // the world embedded: what a guest toolchain hands wit-component.
    let mut types = wasm_encoder::TypeSection::new();
    types.ty().function([], [wasm_encoder::ValType::I32]);
    let mut imports = wasm_encoder::ImportSection::new();
    // `wasi:filesystem@0.2.6` + `preopens` is imported as
    // `wasi:filesystem/preopens@0.2.6`.
    let (name, version) = package.split_once('@').unwrap_or((package, ""));
    let module_name = if version.is_empty() {
        format!("{name}/{interface}")
    } else {
        format!("{name}/{interface}@{version}")
    };
    imports.import(&module_name, "probe", wasm_encoder::EntityType::Function(0));
    let mut core = wasm_encoder::Module::new();
    core.section(&types).section(&imports);
    let mut module = core.finish();
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
        false,
    )
    .expect("metadata embeds");
    wit_component::ComponentEncoder::default()
        .module(&module)
        .expect("a core module")
        .encode()
        .expect("a component")
}

#[test]
fn a_plugin_importing_the_filesystem_is_refused_at_load_naming_the_import() {
    let bytes = component_importing("wasi:filesystem@0.2.6", "preopens");
    let error = kendo_bridge::plugin::Plugin::from_bytes(
        &bytes,
        "evil.wasm",
        &kendo_bridge::plugin::CacheLocation::Disabled,
    )
    .expect_err("a plugin with file access is refused");
    let message = error.to_string();
    assert!(
        message.contains("wasi:filesystem/preopens@0.2.6"),
        "{message}"
    );
    assert!(message.contains("may not use"), "{message}");
}

#[test]
fn a_plugin_importing_only_stderr_passes_the_import_check() {
    let bytes = component_importing("wasi:cli@0.2.6", "stderr");
    let error = kendo_bridge::plugin::Plugin::from_bytes(
        &bytes,
        "stderr-only.wasm",
        &kendo_bridge::plugin::CacheLocation::Disabled,
    )
    .expect_err("it exports no bridge, so linking still fails");
    assert!(
        matches!(error, kendo_bridge::plugin::PluginError::Link { .. }),
        "refused at linking, not for its import: {error}"
    );
}
