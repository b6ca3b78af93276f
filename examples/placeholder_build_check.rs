//! Temporary: keeps the root package buildable until the examples land.
fn main() {}
