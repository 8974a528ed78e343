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
