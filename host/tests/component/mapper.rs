//! A team's mapper plugged into the bridge: what it may import (nothing
//! that reaches files or the network, named when refused), and what its
//! answer does to the built-in decision.

use crate::support::{default_rules, map_salesloft, read_fixture, salesloft_inputs, workspace};
use kendo_bridge::plugin::{
    CacheLocation, Plugin, PluginError,
    types::{Decision, SyncMethod},
};

/// A mapper whose world also imports `interface` of `package` (one
/// function), exporting `kendo:bridge/mapper` with a body that is never
/// run: enough to be composed and checked at load.
fn mapper_importing(package: &str, interface: &str) -> Vec<u8> {
    use wasm_encoder::{
        CodeSection, EntityType, ExportKind, ExportSection, Function, FunctionSection,
        ImportSection, Instruction, MemorySection, MemoryType, Module, TypeSection, ValType,
    };

    let mut resolve = wit_parser::Resolve::default();
    resolve
        .push_dir(workspace().join("wit"))
        .expect("the repository's WIT parses");
    let wit = format!(
        "package {package};\ninterface {interface} {{ probe: func() -> u32; }}\n\
         world probe-mapper {{ import {interface}; export kendo:bridge/mapper@0.1.0; }}\n"
    );
    let pkg = resolve
        .push_str("probe.wit", &wit)
        .expect("the probe WIT parses");
    let world = resolve
        .select_world(&[pkg], Some("probe-mapper"))
        .expect("the probe world");

    let (name, version) = package.split_once('@').unwrap_or((package, ""));
    let mut types = TypeSection::new();
    types.ty().function([], [ValType::I32]);
    // `decide`'s arguments and result both go through memory.
    types.ty().function([ValType::I32], [ValType::I32]);
    types.ty().function([ValType::I32; 4], [ValType::I32]);
    let mut imports = ImportSection::new();
    imports.import(
        &format!("{name}/{interface}@{version}"),
        "probe",
        EntityType::Function(0),
    );
    let mut functions = FunctionSection::new();
    functions.function(1).function(2);
    let mut memory = MemorySection::new();
    memory.memory(MemoryType {
        minimum: 1,
        maximum: None,
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    let mut exports = ExportSection::new();
    exports
        .export("kendo:bridge/mapper@0.1.0#decide", ExportKind::Func, 1)
        .export("cabi_realloc", ExportKind::Func, 2)
        .export("memory", ExportKind::Memory, 0);
    let mut code = CodeSection::new();
    for _ in 0..2 {
        let mut body = Function::new([]);
        body.instruction(&Instruction::Unreachable)
            .instruction(&Instruction::End);
        code.function(&body);
    }
    let mut module = Module::new();
    module
        .section(&types)
        .section(&imports)
        .section(&functions)
        .section(&memory)
        .section(&exports)
        .section(&code);
    let mut module = module.finish();
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

fn load(bytes: &[u8], origin: &str) -> Result<Plugin, PluginError> {
    Plugin::with_mapper(bytes, origin, &CacheLocation::Disabled)
}

#[test]
fn a_mapper_importing_sockets_is_refused_at_load_naming_the_import() {
    let bytes = mapper_importing("wasi:sockets@0.2.6", "tcp");
    let error = load(&bytes, "net-mapper.wasm").expect_err("a mapper with sockets is refused");
    let message = error.to_string();
    assert!(message.contains("wasi:sockets/tcp@0.2.6"), "{message}");
    assert!(message.contains("net-mapper.wasm"), "{message}");
    assert!(message.contains("may not use"), "{message}");
}

#[test]
fn a_mapper_importing_the_filesystem_is_refused_at_load_naming_the_import() {
    let bytes = mapper_importing("wasi:filesystem@0.2.6", "preopens");
    let error = load(&bytes, "file-mapper.wasm").expect_err("a mapper with files is refused");
    let message = error.to_string();
    assert!(
        message.contains("wasi:filesystem/preopens@0.2.6"),
        "{message}"
    );
}

#[test]
fn a_mapper_importing_http_is_refused_at_load_naming_the_import() {
    let bytes = mapper_importing("wasi:http@0.2.6", "outgoing-handler");
    let error = load(&bytes, "http-mapper.wasm").expect_err("a mapper with http is refused");
    let message = error.to_string();
    assert!(
        message.contains("wasi:http/outgoing-handler@0.2.6"),
        "{message}"
    );
}

#[test]
fn a_mapper_importing_a_clock_passes_the_import_check() {
    let bytes = mapper_importing("wasi:clocks@0.2.6", "wall-clock");
    let error = load(&bytes, "clock-mapper.wasm")
        .expect_err("the probe's made-up clock function does not link");
    assert!(
        matches!(error, PluginError::Link { .. }),
        "refused at linking, not for its import (the host fixes the clock): {error}"
    );
}

#[test]
fn a_component_that_exports_no_mapper_is_refused_saying_what_is_missing() {
    let bridge = Plugin::socket_bytes();
    let error = load(bridge, "bridge.wasm").expect_err("the bridge is not a mapper");
    let message = error.to_string();
    assert!(message.contains("kendo:bridge/mapper@0.1.0"), "{message}");
    assert!(message.contains("bridge.wasm"), "{message}");
}

#[test]
fn the_built_in_component_imports_nothing_with_its_default_mapper_composed() {
    let plugin = Plugin::embedded().expect("the embedded plugin loads");
    let engine = wasmtime::Engine::default();
    let component = wasmtime::component::Component::new(&engine, Plugin::embedded_bytes())
        .expect("the built-in component compiles");
    let imports: Vec<String> = component
        .component_type()
        .imports(&engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    assert_eq!(imports, Vec::<String>::new(), "{}", plugin.origin());
}

#[test]
fn the_trapping_mapper_keeps_the_built_in_decision_on_an_ordinary_call() {
    let path = std::path::Path::new(env!("KENDO_BRIDGE_TRAP_COMPONENT"));
    let mut instance = Plugin::with_mapper_file(path)
        .expect("the trapping mapper loads")
        .instance()
        .expect("instantiates");
    let mut inputs = salesloft_inputs(read_fixture("seed-examples/inputs/salesloft-call.json"));
    inputs.user = Some(read_fixture("seed-examples/inputs/salesloft-user.json"));
    let decision = map_salesloft(
        &mut instance,
        &inputs,
        &default_rules(),
        SyncMethod::Polling,
    );
    assert!(
        matches!(decision, Ok(Ok(Decision::Send(_)))),
        "{decision:?}"
    );
}

#[test]
fn a_mapper_reading_the_clock_gets_the_fixed_time() {
    let path = std::path::Path::new(env!("KENDO_BRIDGE_TRAP_COMPONENT"));
    let mut instance = Plugin::with_mapper_file(path)
        .expect("the trapping mapper loads")
        .instance()
        .expect("instantiates");
    let mut call: serde_json::Value =
        serde_json::from_str(&read_fixture("seed-examples/inputs/salesloft-call.json"))
            .expect("JSON");
    call["sentiment"] = "kendo-bridge-test-clock".into();
    let mut inputs = salesloft_inputs(call.to_string());
    inputs.user = Some(read_fixture("seed-examples/inputs/salesloft-user.json"));
    let decision = map_salesloft(
        &mut instance,
        &inputs,
        &default_rules(),
        SyncMethod::Polling,
    );
    match decision {
        Ok(Ok(Decision::Skip(skip))) => assert_eq!(
            skip.detail,
            format!(
                "the clock reads {}",
                kendo_bridge::plugin::FIXED_CLOCK_UNIX_SECONDS
            )
        ),
        other => panic!("the mapper skips with its clock's reading: {other:?}"),
    }
}
