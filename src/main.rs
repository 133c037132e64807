//! The `fastgate` Wasm binary: `#[fastly::main]` hands each request to the adapter
//! (`src/adapter/`), which runs the library's phases and performs the platform calls.

#[cfg(target_arch = "wasm32")]
#[path = "adapter/mod.rs"]
mod adapter;

#[cfg(target_arch = "wasm32")]
#[fastly::main]
fn main(req: fastly::Request) -> Result<fastly::Response, fastly::Error> {
    Ok(adapter::handle(req))
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!(
        "fastgate's edge binary runs on Fastly Compute: build it with \
         `cargo build --profile wasm --target wasm32-wasip1` and run it with `cargo xtask serve`."
    );
    std::process::exit(2);
}
