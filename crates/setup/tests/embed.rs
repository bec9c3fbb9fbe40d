//! The embedding example runs as part of the test suite, so it keeps working.

#[path = "../examples/embed.rs"]
#[allow(dead_code)]
mod embed;

#[test]
fn the_embedding_example_runs() {
    embed::main().unwrap();
}
