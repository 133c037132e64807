//! HTTP-date (RFC 9110 §5.6.7), read with the `httpdate` crate: IMF-fixdate and, as a
//! recipient must, the obsolete RFC 850 and asctime forms.

use std::time::{SystemTime, UNIX_EPOCH};

/// Day names as IMF-fixdate and asctime spell them, Monday first.
pub const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
/// Day names as the obsolete RFC 850 form spells them, Monday first.
pub const LONG_WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Epoch seconds of an HTTP-date; `None` for anything that is not one. Surrounding spaces
/// and tabs (optional whitespace around a field value) are ignored. A valid date before
/// 1970 reads as 0: it is long past, and still a date (an `Expires` in the past is expired,
/// not garbage).
pub fn parse_http_date(value: &str) -> Option<u64> {
    let value = value.trim_matches([' ', '\t']);
    match httpdate::parse_http_date(value) {
        Ok(time) => Some(epoch_secs(time)),
        Err(_) => parse_lenient(value),
    }
}

fn epoch_secs(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The dates `httpdate` refuses that a recipient should still read:
/// - a weekday that does not match the date: RFC 9110 gives a recipient no use for it, and
///   the HTTP caching test suite's asctime case (`Thu Aug  8 02:01:18 2050`, a Monday)
///   expects the date read. So the date is retried with each weekday in its place (the given
///   one must still be a weekday name);
/// - a year before 1970, which `httpdate` cannot represent (see [`shift_before_1970`]);
/// - names in another case (`sunday`, `NOV`, `gmt`): RFC 9110 calls HTTP-date case
///   sensitive, but what a sender meant is unambiguous, and the caching suite counts reading
///   it as optimal, so names are folded to their canonical case first.
fn parse_lenient(value: &str) -> Option<u64> {
    let mut date = canonical_case(value);
    let before_1970 = shift_before_1970(&mut date);
    let (given, rest) = date.split_at(date.find([',', ' '])?);
    let names = if given.len() == 3 {
        WEEKDAYS
    } else {
        LONG_WEEKDAYS
    };
    if !names.contains(&given) {
        return None;
    }
    let time = names
        .iter()
        .find_map(|day| httpdate::parse_http_date(&format!("{day}{rest}")).ok())?;
    Some(if before_1970 { 0 } else { epoch_secs(time) })
}

/// `value` with every run of letters in the case HTTP-date spells it: `GMT` upper, names
/// capitalised (`sun` → `Sun`, `NOVEMBER` → `November`).
fn canonical_case(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut word_start = true;
    for c in value.chars() {
        if c.is_ascii_alphabetic() {
            out.push(if word_start {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            });
            word_start = false;
        } else {
            out.push(c);
            word_start = true;
        }
    }
    out.replace("Gmt", "GMT")
}

/// Moves the year of an IMF-fixdate or asctime date before 1970 forward by the fewest
/// 400-year cycles that reach 1970, and says whether it did. The Gregorian calendar repeats
/// every 400 years, so the day stays exactly as valid or invalid. (An RFC 850 two-digit
/// year always means 1970–2069.)
fn shift_before_1970(date: &mut String) -> bool {
    let at = match date.len() {
        29 => 12..16, // `Sun, 06 Nov 1994 08:49:37 GMT`
        24 => 20..24, // `Sun Nov  6 08:49:37 1994`
        _ => return false,
    };
    let year = date
        .get(at.clone())
        .filter(|y| y.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|y| y.parse::<u32>().ok());
    match year {
        Some(year) if year < 1970 => {
            let later = year + 400 * (1970 - year).div_ceil(400);
            date.replace_range(at, &later.to_string());
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 784_111_777;

    #[test]
    fn reads_the_three_forms() {
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(T));
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), Some(T));
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), Some(T));
        assert_eq!(parse_http_date(" Sun, 06 Nov 1994 08:49:37 GMT\t"), Some(T));
        assert_eq!(parse_http_date("yesterday"), None);
        // Names in another case are read as meant.
        assert_eq!(parse_http_date("sun, 06 nov 1994 08:49:37 gmt"), Some(T));
        assert_eq!(parse_http_date("SUN, 06 NOV 1994 08:49:37 GMT"), Some(T));
        assert_eq!(parse_http_date("SUNDAY, 06-NOV-94 08:49:37 Gmt"), Some(T));
        assert_eq!(parse_http_date("sun nov  6 08:49:37 1994"), Some(T));
        assert_eq!(parse_http_date(""), None);
    }

    /// Moved from the cache's tests when its own parser was replaced by this one.
    #[test]
    fn http_dates() {
        const T: u64 = 784_111_777; // 1994-11-06 08:49:37 UTC
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(T));
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), Some(T));
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), Some(T));
        assert_eq!(parse_http_date(" Sun, 06 Nov 1994 08:49:37 GMT "), Some(T));
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2028 23:59:59 GMT"),
            Some(1_835_481_599)
        );
        assert_eq!(parse_http_date("Wed, 31 Dec 1969 23:59:59 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Monday, 01-Jan-24 00:00:00 GMT"),
            Some(1_704_067_200)
        );
        for bad in [
            "",
            "0",
            "-1",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 31 Nov 1994 08:49:37 GMT",
            "Sun, 29 Feb 2027 08:49:37 GMT",
            "Xyz, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-1994 08:49:37 GMT",
            "Sun Nov 6 08:49:37 1994",
            "Sun, 06 Nov 1994 08:49:37 GMT garbage",
            "Sun, 0é Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_weekday_is_not_checked_but_must_be_one() {
        // The caching test suite's asctime case: 8 Aug 2050 is a Monday.
        assert_eq!(
            parse_http_date("Thu Aug  8 02:01:18 2050"),
            parse_http_date("Mon Aug  8 02:01:18 2050")
        );
        assert!(parse_http_date("Mon Aug  8 02:01:18 2050").is_some());
        assert_eq!(parse_http_date("Mon, 06 Nov 1994 08:49:37 GMT"), Some(T));
        assert_eq!(parse_http_date("Friday, 06-Nov-94 08:49:37 GMT"), Some(T));
        // Another case is only another spelling (the caching suite's wrong-case tests).
        let aug_18 = parse_http_date("Thu, 18 Aug 2050 02:01:18 GMT");
        assert!(aug_18.is_some());
        for other_case in [
            "THU, 18 Aug 2050 02:01:18 GMT",
            "Thu, 18 AUG 2050 02:01:18 GMT",
            "Thu, 18 Aug 2050 02:01:18 gMT",
        ] {
            assert_eq!(parse_http_date(other_case), aug_18, "{other_case:?}");
        }
        for bad in [
            "Thu 18 Aug 2050 02:01:18 GMT",
            "Thurs, 18 Aug 2050 02:01:18 GMT",
            "Thursday, 18-Aug-2050 02:01:18 GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn dates_before_1970_read_as_zero_when_valid() {
        assert_eq!(parse_http_date("Wed Dec 31 23:59:59 1969"), Some(0));
        assert_eq!(parse_http_date("Sat, 01 Jan 0000 00:00:00 GMT"), Some(0));
        // 1900 is not a leap year (2300, 400 years on, is not either); 1600 is.
        assert_eq!(parse_http_date("Thu, 29 Feb 1900 00:00:00 GMT"), None);
        assert_eq!(parse_http_date("Tue, 29 Feb 1600 00:00:00 GMT"), Some(0));
        assert_eq!(parse_http_date("Sun, 31 Nov 1969 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("Sun, 06 Nov 1969 24:00:00 GMT"), None);
    }
}
