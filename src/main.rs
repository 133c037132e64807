//! The `fastgate` Wasm binary: `main` hands each request to the adapter
//! (`src/adapter/`), which runs the library's phases and performs the platform calls.

#[cfg(target_arch = "wasm32")]
#[path = "adapter/mod.rs"]
mod adapter;

/// Not `#[fastly::main]`: the adapter sends the response itself, so that work which may
/// wait (refreshing a stale cache entry) runs after the client has its answer.
#[cfg(target_arch = "wasm32")]
fn main() {
    adapter::serve(fastly::Request::from_client());
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!(
        "fastgate's edge binary runs on Fastly Compute: build it with \
         `cargo build --profile wasm --target wasm32-wasip1` and run it with `cargo xtask serve`."
    );
    std::process::exit(2);
}
