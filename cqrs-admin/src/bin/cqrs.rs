//! The `cqrs` command line.
fn main() {}
