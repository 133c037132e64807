//! The `fastgate` Wasm binary: `main` hands each request to the adapter
//! (`src/adapter/`), which runs the library's phases and performs the platform calls.

#[cfg(target_arch = "wasm32")]
#[path = "adapter/mod.rs"]
mod adapter;

/// Requests one instance may serve before it ends (a reused sandbox).
#[cfg(target_arch = "wasm32")]
const MAX_REQUESTS_PER_INSTANCE: usize = 1000;

/// Not `#[fastly::main]`, for two reasons. The adapter sends the response itself, so that
/// work which may wait (refreshing a stale cache entry) runs after the client has its
/// answer. And the instance serves several requests in turn (the platform's reusable
/// sandboxes, `fastly::http::serve`): instantiating the Wasm and compiling the config then
/// happen once per instance instead of once per request. Nothing request-scoped outlives
/// `adapter::serve`; what requests share lives in the platform (Core Cache, stores), and
/// the config is compiled again whenever the Config Store's text changes.
#[cfg(target_arch = "wasm32")]
fn main() {
    // The handler sends its own response, so the summary has no error to report.
    let _summary = fastly::http::serve::Serve::new()
        .with_max_requests(MAX_REQUESTS_PER_INSTANCE)
        .run(adapter::serve);
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!(
        "fastgate's edge binary runs on Fastly Compute: build it with \
         `cargo build --profile wasm --target wasm32-wasip1` and run it with `cargo xtask serve`."
    );
    std::process::exit(2);
}
