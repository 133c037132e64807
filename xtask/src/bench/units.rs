//! How every benchmark writes its figures, so that the origin's and the edge's tables
//! read alike: latencies in ms at three significant digits, counts with thousands
//! separators, memory in MiB.

/// `1234567.4` as `1,234,567`.
pub fn thousands(v: f64) -> String {
    let n = v.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Microseconds as milliseconds, with fewer decimals the larger they get.
pub fn ms(us: f64) -> String {
    let ms = us / 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// `part` as a percentage of `whole`; 0 when there is no whole.
pub fn percent(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        100.0 * part / whole
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(ms(250.0), "0.25 ms");
        assert_eq!(ms(12_340.0), "12.3 ms");
    }
}
