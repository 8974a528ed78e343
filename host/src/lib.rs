//! kendo-bridge host library.

pub mod store;
