//! The floor for `cargo xtask bench edge`: the least a Compute service can do with a
//! request. It carries only `fastly` and does one of two things:
//!
//! - `/__floor/synthetic...`: answers `200` itself, with no origin (the floor for a cache
//!   hit, which also never leaves the POP);
//! - anything else: `req.send("origin_us")`, streaming the origin's answer back unchanged.
//!
//! It runs under the same Viceroy, manifest and origins as fastgate, so the ratio between
//! the two is what fastgate's own work costs.

#[cfg(target_arch = "wasm32")]
fn main() {
    use fastly::http::StatusCode;
    use fastly::{Request, Response};

    let req = Request::from_client();
    if req.get_path().starts_with("/__floor/synthetic") {
        Response::from_status(StatusCode::OK)
            .with_body_text_plain("ok\n")
            .send_to_client();
        return;
    }
    match req.send("origin_us") {
        Ok(resp) => resp.send_to_client(),
        Err(_) => Response::from_status(StatusCode::BAD_GATEWAY).send_to_client(),
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("the pass-through is a Compute Wasm: build it for wasm32-wasip1");
}
