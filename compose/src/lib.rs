//! Plugs a mapper component into the bridge component (wac's "plug"): the
//! bridge's `kendo:bridge/mapper` import is satisfied by the mapper's
//! export, and the result exports everything the bridge exports.
//!
//! Shared by the host's `build.rs` (the built-in component with the default
//! mapper), the host (a team's mapper: `mapper =`, `--mapper`) and
//! `spin build` (this crate's binary), so all compose the same way.

/// The interface a mapper exports and the bridge imports.
pub const MAPPER_INTERFACE: &str = "kendo:bridge/mapper@0.1.0";

/// What a mapper may import, by interface (any version): standard streams
/// (the host keeps them in memory, for panic messages), an empty
/// environment, exit, a fixed clock and seeded randomness. What a `std`
/// Rust component links even when pure; nothing here reaches files or the
/// network.
pub const ALLOWED_IMPORTS: [&str; 18] = [
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
];

/// Whether an import (`wasi:cli/stderr@0.2.6`) is in [`ALLOWED_IMPORTS`].
pub fn is_allowed_import(name: &str) -> bool {
    let interface = name.split('@').next().unwrap_or(name);
    ALLOWED_IMPORTS.contains(&interface)
}

/// The imports of the component `bytes` outside [`ALLOWED_IMPORTS`], by
/// name (`wasi:sockets/tcp@0.2.6`).
pub fn forbidden_imports(bytes: &[u8]) -> Result<Vec<String>, ComposeError> {
    let mut types = wac_graph::types::Types::default();
    let package = wac_graph::types::Package::from_bytes(
        "kendo:bridge-mapper",
        None,
        bytes.to_vec(),
        &mut types,
    )
    .map_err(|error| ComposeError::NotAComponent {
        what: "the mapper",
        message: format!("{error:#}"),
    })?;
    Ok(types[package.ty()]
        .imports
        .keys()
        .filter(|name| !is_allowed_import(name))
        .cloned()
        .collect())
}

/// Why a mapper could not be plugged into the bridge.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// The bytes are not a component wac can read.
    #[error("{what} is not a WebAssembly component: {message}")]
    NotAComponent { what: &'static str, message: String },
    /// The mapper does not export the mapper interface (or exports it with
    /// different types).
    #[error("the mapper does not export {MAPPER_INTERFACE} as the bridge expects: {message}")]
    NoMapperExport { message: String },
    /// wac could not encode the composition.
    #[error("could not encode the composed component: {message}")]
    Encode { message: String },
}

/// The bridge with `mapper` plugged into its mapper import.
pub fn plug_mapper(bridge: &[u8], mapper: &[u8]) -> Result<Vec<u8>, ComposeError> {
    use wac_graph::{CompositionGraph, EncodeOptions, types::Package};

    let mut graph = CompositionGraph::new();
    let mut register = |name: &str, bytes: &[u8], what: &'static str| {
        let package = Package::from_bytes(name, None, bytes.to_vec(), graph.types_mut()).map_err(
            |error| ComposeError::NotAComponent {
                what,
                message: format!("{error:#}"),
            },
        )?;
        graph
            .register_package(package)
            .map_err(|error| ComposeError::NotAComponent {
                what,
                message: error.to_string(),
            })
    };
    let bridge = register("kendo:bridge-socket", bridge, "the bridge")?;
    let mapper = register("kendo:bridge-mapper", mapper, "the mapper")?;
    wac_graph::plug(&mut graph, vec![mapper], bridge).map_err(|error| {
        ComposeError::NoMapperExport {
            message: format!("{error:#}"),
        }
    })?;
    graph
        .encode(EncodeOptions::default())
        .map_err(|error| ComposeError::Encode {
            message: format!("{error:#}"),
        })
}
