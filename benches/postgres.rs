//! Postgres benches (being written).
fn main() {}
