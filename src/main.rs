//! The Wasm adapter: turns a `fastly::Request` into the library's [`RequestFacts`], runs the
//! gateway's phases and carries out the decision (send, respond, log). It decides nothing.

#[cfg(target_arch = "wasm32")]
mod edge {
    use fastly::geo::geo_lookup;
    use fastly::http::StatusCode;
    use fastly::{Request, Response};

    use fastgate::config::Config;
    use fastgate::gateway::{self, Decision, Forward, Gateway, RequestFacts};
    use fastgate::geo::ClientGeo;
    use fastgate::problem::{self, Problem};
    use fastgate::request_id;

    pub fn handle(req: Request) -> Response {
        let config = match Config::embedded() {
            Ok(config) => config,
            Err(e) => {
                // Unit tests validate the embedded config, so this is a build defect; say so.
                eprintln!("{{\"event\":\"config_invalid\",\"error\":{:?}}}", e.to_string());
                let id = request_id::generate();
                return problem_response(&gateway::internal_error(&id));
            }
        };
        let gateway = Gateway::new(config);
        let client_ip = req.get_client_ip_addr();
        let geo = client_ip
            .and_then(geo_lookup)
            .map(|g| ClientGeo {
                country: Some(g.country_code().to_ascii_uppercase()),
                continent: Some(g.continent().as_code().to_owned()),
            })
            .unwrap_or_default();
        let plan = {
            let facts = RequestFacts {
                method: req.get_method_str(),
                path: req.get_path(),
                header_names: req.get_header_names_str(),
                connection_header: req.get_header_str("connection"),
                request_id: req.get_header_str(request_id::HEADER),
                host: req.get_header_str("host"),
                client_ip,
                tls: req.get_tls_protocol_bytes().is_some(),
                geo: geo.clone(),
            };
            gateway.plan(&facts)
        };
        let mut log = LogLine {
            request_id: &plan.request_id,
            client_ip,
            country: geo.country.as_deref(),
            continent: geo.continent.as_deref(),
            route: None,
            geo_level: None,
            backend: None,
            status: 0,
        };
        let mut resp = match plan.decision {
            Decision::Respond(p) => problem_response(&p),
            Decision::Forward(forward) => {
                log.route = Some(forward.route_id.clone());
                log.geo_level = Some(forward.geo_level.as_str());
                let (backend, resp) = forward_to_origin(req, forward, &plan.request_id);
                log.backend = backend;
                resp
            }
        };
        log.status = resp.get_status().as_u16();
        resp.set_header(request_id::HEADER, &plan.request_id);
        println!("{}", serde_json::to_string(&log).unwrap_or_default());
        resp
    }

    /// Applies the header edits and sends to the first chosen backend.
    fn forward_to_origin(
        mut req: Request,
        forward: Forward,
        request_id: &str,
    ) -> (Option<String>, Response) {
        for name in &forward.headers.remove {
            req.remove_header(name.as_str());
        }
        for (name, value) in &forward.headers.set {
            req.set_header(*name, value.as_str());
        }
        let Some(backend) = forward.backends.first().cloned() else {
            let p = gateway::bad_gateway(request_id, &forward.backends);
            return (None, problem_response(&p));
        };
        match req.send(backend.as_str()) {
            Ok(resp) => (Some(backend), resp),
            Err(e) => {
                eprintln!(
                    "{{\"event\":\"backend_error\",\"backend\":{backend:?},\"error\":{:?}}}",
                    e.root_cause().to_string()
                );
                let p = gateway::bad_gateway(request_id, std::slice::from_ref(&backend));
                (Some(backend), problem_response(&p))
            }
        }
    }

    fn problem_response(p: &Problem) -> Response {
        Response::from_status(StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_GATEWAY))
            .with_header("content-type", problem::CONTENT_TYPE)
            .with_header("cache-control", "no-store")
            .with_body(p.to_json())
    }

    /// One JSON line per request on stdout (Viceroy prints it; on Fastly, stdout is the
    /// service's log stream). Never a token or a secret.
    #[derive(serde::Serialize)]
    struct LogLine<'a> {
        request_id: &'a str,
        client_ip: Option<std::net::IpAddr>,
        country: Option<&'a str>,
        continent: Option<&'a str>,
        route: Option<String>,
        geo_level: Option<&'static str>,
        backend: Option<String>,
        status: u16,
    }
}

#[cfg(target_arch = "wasm32")]
#[fastly::main]
fn main(req: fastly::Request) -> Result<fastly::Response, fastly::Error> {
    Ok(edge::handle(req))
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!(
        "fastgate's edge binary runs on Fastly Compute: build it with \
         `cargo build --release --target wasm32-wasip1` and run it with `cargo xtask serve`."
    );
    std::process::exit(2);
}
