//! Delivery benchmarks (work in progress).

fn main() {}
