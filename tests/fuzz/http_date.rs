//! HTTP dates (`fastgate::http::parse_http_date`): `Expires`, `Date`, `Last-Modified` and
//! `If-Modified-Since` come from clients and origins, and decide freshness.
//!
//! Inputs: dates in the three forms of RFC 9110 §5.6.7 from components that may be out of
//! range (day 31 of a 30-day month, hour 24, month 13), with the right weekday or another,
//! from year 0 to 9999; those mutated; arbitrary text. A model computes the epoch second
//! from the components (0 before 1970, as documented; an RFC 850 two-digit year is
//! 1970–2069).

use fastgate::http::{parse_http_date, LONG_WEEKDAYS as LONG_DAYS, WEEKDAYS as DAYS};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseResult;

use crate::harness::{self, mutations_of, text_char, Budget};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
/// 9999-12-31T23:59:59Z, the last second any of the forms can spell.
const LAST: i64 = 253_402_300_799;

#[derive(Debug, Clone, Copy)]
enum Form {
    Imf,
    Rfc850,
    Asctime,
}

#[derive(Debug, Clone)]
struct Date {
    form: Form,
    year: i64,
    /// 1-based; may be out of range.
    month: u32,
    day: u32,
    hms: (u32, u32, u32),
    /// `None`: the right weekday; else this one (0 = Monday).
    weekday: Option<usize>,
    ows: (&'static str, &'static str),
}

fn dates() -> impl Strategy<Value = Date> {
    let form = select(vec![Form::Imf, Form::Rfc850, Form::Asctime]);
    let year = prop_oneof![4 => 1970i64..2100, 2 => 0i64..10_000, 1 => 1965i64..1975];
    let month = prop_oneof![9 => 1u32..=12, 1 => Just(13u32)];
    let day = prop_oneof![9 => 1u32..=28, 3 => 29u32..=31, 1 => Just(32u32)];
    let hms = (
        prop_oneof![9 => 0u32..24, 1 => Just(24u32)],
        0u32..60,
        0u32..60,
    );
    let weekday = proptest::option::weighted(0.2, 0usize..7);
    let ows = (select(&["", " ", "\t "][..]), select(&["", " ", "\t"][..]));
    (form, year, month, day, hms, weekday, ows).prop_map(
        |(form, year, month, day, hms, weekday, ows)| Date {
            form,
            year: match form {
                Form::Rfc850 => 1970 + year.rem_euclid(100),
                _ => year,
            },
            month,
            day,
            hms,
            weekday,
            ows,
        },
    )
}

impl Date {
    fn valid(&self) -> bool {
        let leap = (self.year % 4 == 0 && self.year % 100 != 0) || self.year % 400 == 0;
        let month_days = [
            31,
            if leap { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        (1..=12).contains(&self.month)
            && self.day >= 1
            && self.day <= month_days[(self.month - 1) as usize]
            && self.hms.0 < 24
    }

    fn epoch(&self) -> i64 {
        let days = days_from_civil(self.year, self.month.min(12), self.day);
        let (h, m, s) = self.hms;
        days * 86_400 + i64::from(h * 3600 + m * 60 + s)
    }

    fn write(&self) -> String {
        let weekday = self.weekday.unwrap_or_else(|| {
            (days_from_civil(self.year, self.month.min(12), self.day) + 3).rem_euclid(7) as usize
        });
        let month = MONTHS[(self.month as usize + 11) % 12];
        let month = if self.month == 13 { "Foo" } else { month };
        let (h, m, s) = self.hms;
        let (lead, trail) = self.ows;
        let (d, y) = (self.day, self.year);
        let text = match self.form {
            Form::Imf => format!(
                "{}, {d:02} {month} {y:04} {h:02}:{m:02}:{s:02} GMT",
                DAYS[weekday]
            ),
            Form::Rfc850 => format!(
                "{}, {d:02}-{month}-{:02} {h:02}:{m:02}:{s:02} GMT",
                LONG_DAYS[weekday],
                y % 100
            ),
            Form::Asctime => format!(
                "{} {month} {d:>2} {h:02}:{m:02}:{s:02} {y:04}",
                DAYS[weekday]
            ),
        };
        format!("{lead}{text}{trail}")
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[derive(Debug, Clone)]
enum Case {
    Date(Date),
    Text(String),
}

fn cases() -> impl Strategy<Value = Case> {
    let seed = dates().prop_map(|d| d.write());
    let alphabet = prop_oneof![
        3 => select(&[' ', ',', '-', ':', '0', '9', 'G', 'M', 'T', 'a', '\t'][..]),
        1 => text_char(),
    ];
    prop_oneof![
        4 => dates().prop_map(Case::Date),
        3 => mutations_of(seed, alphabet, 4).prop_map(Case::Text),
        1 => proptest::collection::vec(text_char(), 0..40)
            .prop_map(|c| Case::Text(c.into_iter().collect())),
    ]
}

pub fn run(budget: Budget) {
    harness::run("http-date", budget, cases(), check);
}

fn check(case: Case) -> TestCaseResult {
    match case {
        Case::Date(date) => {
            let text = date.write();
            let expected = date.valid().then(|| date.epoch().max(0) as u64);
            prop_assert_eq!(parse_http_date(&text), expected, "for {:?}", text);
        }
        Case::Text(text) => {
            if let Some(t) = parse_http_date(&text) {
                prop_assert!(t as i64 <= LAST, "{text:?} read as {t}");
            }
        }
    }
    Ok(())
}
