//! Plugs a mapper component into the bridge component (wac's "plug"): the
//! bridge's `kendo:bridge/mapper` import is satisfied by the mapper's
//! export, and the result exports everything the bridge exports.
//!
//! Shared by the host's `build.rs` (the built-in component with the default
//! mapper), the host (a team's mapper: `mapper =`, `--mapper`) and
//! `spin build` (this crate's binary), so all compose the same way.

/// The interface a mapper exports and the bridge imports.
pub const MAPPER_INTERFACE: &str = "kendo:bridge/mapper@0.1.0";

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
