//! Criterion benches of the ESP data plane (filled below).
#![allow(missing_docs)]
fn main() {}
