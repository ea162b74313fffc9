//! Prints `name=path` for each guest component, for scripts (the benchmarks) that run guests
//! outside the test suite: `cargo run -q -p updraft-test-guests --example guest-paths`.

fn main() {
    use updraft_test_guests as g;
    println!("http-echo={}", g::HTTP_ECHO);
    println!("http-misbehave={}", g::HTTP_MISBEHAVE);
    println!("kv-draft2={}", g::KV_DRAFT2);
    if let Some(p) = g::PY_HELLO {
        println!("py-hello={p}");
    }
}
