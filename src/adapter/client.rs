//! The client's facts straight from the platform, one hostcall each: its address, whether
//! it came over TLS, and its location. The SDK's `Request::get_client_ip_addr` loads a
//! dozen metadata fields to answer one, and `geo_lookup` parses every field of the
//! location record; the edge needs the address, one flag and two codes.

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use fastly::Request;
use fastly_sys::fastly_geo;
use fastly_sys::fastly_http_downstream as downstream;
use serde::Deserialize;

use fastgate::geo::ClientGeo;

/// The client's address, `None` when the platform has none for this request.
pub(crate) fn ip(req: &Request) -> Option<IpAddr> {
    let handle = req.as_handles().0.as_u32();
    let mut octets = [0u8; 16];
    let mut written = 0usize;
    // SAFETY: the hostcall writes at most 16 bytes (an IPv6 address) into `octets`.
    let status =
        unsafe { downstream::downstream_client_ip_addr(handle, octets.as_mut_ptr(), &mut written) };
    if status.is_err() {
        return None;
    }
    match written {
        4 => Some(Ipv4Addr::new(octets[0], octets[1], octets[2], octets[3]).into()),
        16 => Some(Ipv6Addr::from(octets).into()),
        _ => None,
    }
}

/// Whether the client's connection is TLS (the platform names its protocol version).
pub(crate) fn tls(req: &Request) -> bool {
    let handle = req.as_handles().0.as_u32();
    let mut protocol = [0u8; 32];
    let mut written = 0usize;
    // SAFETY: the hostcall writes at most `protocol.len()` bytes into `protocol`.
    let status = unsafe {
        downstream::downstream_tls_protocol(
            handle,
            protocol.as_mut_ptr(),
            protocol.len(),
            &mut written,
        )
    };
    status.is_ok() && written > 0
}

/// The two fields of the platform's location record the edge reads.
#[derive(Deserialize)]
struct GeoRecord<'a> {
    #[serde(borrow)]
    country_code: Option<&'a str>,
    #[serde(borrow)]
    continent: Option<&'a str>,
}

/// A location record is a few hundred bytes; one longer is not read.
const GEO_RECORD_MAX: usize = 2048;

thread_local! {
    /// The last client's location. A reused instance mostly serves the same clients in turn
    /// (one keep-alive connection's requests), and an address's location does not change
    /// while an instance lives, so the lookup (a hostcall and a JSON record) is made once.
    static LAST_GEO: RefCell<Option<(IpAddr, ClientGeo)>> = const { RefCell::new(None) };
}

/// The client's location, for the geo map and flags; empty when the platform has none.
pub(crate) fn geo(ip: Option<IpAddr>) -> ClientGeo {
    let Some(ip) = ip else {
        return ClientGeo::default();
    };
    let last = LAST_GEO.with_borrow(|last| last.as_ref().filter(|(a, _)| *a == ip).cloned());
    if let Some((_, geo)) = last {
        return geo;
    }
    let geo = lookup(ip);
    LAST_GEO.set(Some((ip, geo.clone())));
    geo
}

/// The platform's location record for `ip`, reduced to the two codes the edge reads.
fn lookup(ip: IpAddr) -> ClientGeo {
    // Both buffers on the stack: this runs on every request.
    let (v4, v6);
    let octets: &[u8] = match ip {
        IpAddr::V4(addr) => {
            v4 = addr.octets();
            &v4
        }
        IpAddr::V6(addr) => {
            v6 = addr.octets();
            &v6
        }
    };
    let mut buf = [0u8; GEO_RECORD_MAX];
    let mut written = 0usize;
    // SAFETY: the hostcall reads `octets` and writes at most `buf.len()` bytes into `buf`.
    let status = unsafe {
        fastly_geo::lookup(
            octets.as_ptr(),
            octets.len(),
            buf.as_mut_ptr(),
            buf.len(),
            &mut written,
        )
    };
    if status.is_err() || written > buf.len() {
        return ClientGeo::default();
    }
    let Ok(record) = serde_json::from_slice::<GeoRecord>(&buf[..written]) else {
        return ClientGeo::default();
    };
    let code = |c: Option<&str>| c.map(str::to_ascii_uppercase);
    ClientGeo {
        country: code(record.country_code),
        continent: code(record.continent),
    }
}
