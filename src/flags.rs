//! Feature flags, evaluated at the edge and sent to the origin (signed) as `Fastgate-Flags`.
//!
//! A flag has exactly one kind, told apart by its fields (no `kind` tag, so the existing
//! `{"enabled": false}` config keeps working):
//! - on/off: `{"enabled": true}`;
//! - percentage rollout: `{"percent": 25}` (0..=100): on for a stable quarter of clients;
//! - targeting: `{"countries": ["DE"], "continents": ["EU"]}` (either list may be omitted): on
//!   when the client's country or continent is listed.
//!
//! Mixing kinds (`{"enabled": true, "percent": 5}`) is refused rather than guessed at.
//!
//! The rollout bucket is `sha256("<flag name>:<subject>")` (the client IP when anonymous),
//! first 8 bytes as a big-endian u64, mod 100, compared `< percent`. Hashing the flag name in
//! makes different flags roll out to independent populations, and raising the percentage only
//! ever adds clients. An anonymous request with no IP is in no bucket: off, unless at 100.
//!
//! Ops override flags through a Config Store entry ([`apply_overrides`]): each entry replaces
//! that flag's whole spec (so `{"new_schema": {"enabled": true}}` turns a rollout into a plain
//! switch). Only configured flags may be overridden, so a typo is an error, not a no-op.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::FieldError;
use crate::geo::CONTINENTS;

/// One flag as written in the config (see the module docs for the three shapes).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawFlagSpec")]
pub enum FlagSpec {
    /// `{"enabled": bool}`.
    Switch(bool),
    /// `{"percent": 0..=100}`.
    Percent(u32),
    /// `{"countries": [...], "continents": [...]}`: ISO 3166-1 alpha-2 and continent codes.
    Target {
        countries: Vec<String>,
        continents: Vec<String>,
    },
}

/// The fields as written, before the kind is decided.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlagSpec {
    enabled: Option<bool>,
    percent: Option<u32>,
    countries: Option<Vec<String>>,
    continents: Option<Vec<String>>,
}

/// The fields of a flag name no kind, or more than one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagShapeError {
    #[error("a flag needs one of `enabled`, `percent`, or `countries`/`continents`")]
    NoKind,
    #[error("a flag has one kind: `enabled`, `percent`, or `countries`/`continents`, not several")]
    SeveralKinds,
}

impl TryFrom<RawFlagSpec> for FlagSpec {
    type Error = FlagShapeError;

    fn try_from(raw: RawFlagSpec) -> Result<Self, FlagShapeError> {
        let targeting = raw.countries.is_some() || raw.continents.is_some();
        let kinds = usize::from(raw.enabled.is_some())
            + usize::from(raw.percent.is_some())
            + usize::from(targeting);
        match (kinds, raw.enabled, raw.percent) {
            (0, ..) => Err(FlagShapeError::NoKind),
            (1, Some(on), _) => Ok(FlagSpec::Switch(on)),
            (1, _, Some(p)) => Ok(FlagSpec::Percent(p)),
            (1, ..) => Ok(FlagSpec::Target {
                countries: raw.countries.unwrap_or_default(),
                continents: raw.continents.unwrap_or_default(),
            }),
            _ => Err(FlagShapeError::SeveralKinds),
        }
    }
}

impl FlagSpec {
    /// Field-level validation, the field relative to the flag.
    pub fn validate(&self) -> Result<(), FieldError> {
        match self {
            FlagSpec::Switch(_) => Ok(()),
            FlagSpec::Percent(p) if *p > 100 => {
                Err(FieldError::new("percent", format!("{p} is not in 0..=100")))
            }
            FlagSpec::Percent(_) => Ok(()),
            FlagSpec::Target {
                countries,
                continents,
            } => validate_targets(countries, continents),
        }
    }

    /// Whether flag `name` is on for this client.
    pub fn is_on(
        &self,
        name: &str,
        subject: Option<&str>,
        ip: Option<IpAddr>,
        country: Option<&str>,
        continent: Option<&str>,
    ) -> bool {
        match self {
            FlagSpec::Switch(on) => *on,
            FlagSpec::Percent(0) => false,
            FlagSpec::Percent(p) if *p >= 100 => true,
            FlagSpec::Percent(p) => bucket(name, subject, ip).is_some_and(|b| b < *p),
            FlagSpec::Target {
                countries,
                continents,
            } => {
                let listed = |list: &[String], code: Option<&str>| {
                    code.is_some_and(|c| list.iter().any(|l| l.eq_ignore_ascii_case(c)))
                };
                listed(countries, country) || listed(continents, continent)
            }
        }
    }
}

/// A targeting flag's lists: at least one entry, and every code one the platform reports.
fn validate_targets(countries: &[String], continents: &[String]) -> Result<(), FieldError> {
    if countries.is_empty() && continents.is_empty() {
        return Err(FieldError::new(
            "countries",
            "targeting must list a country or a continent (for off, use `enabled: false`)",
        ));
    }
    for (i, c) in countries.iter().enumerate() {
        if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(FieldError::new(
                format!("countries[{i}]"),
                format!("`{c}` is not an upper-case ISO 3166-1 alpha-2 code"),
            ));
        }
    }
    for (i, c) in continents.iter().enumerate() {
        if !CONTINENTS.contains(&c.as_str()) {
            return Err(FieldError::new(
                format!("continents[{i}]"),
                format!("`{c}` is not one of {}", CONTINENTS.join(", ")),
            ));
        }
    }
    Ok(())
}

/// The client's rollout bucket for flag `name`, 0..100, or `None` with no subject and no IP.
pub fn bucket(name: &str, subject: Option<&str>, ip: Option<IpAddr>) -> Option<u32> {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b":");
    match (subject.filter(|s| !s.is_empty()), ip) {
        (Some(s), _) => h.update(s.as_bytes()),
        (None, Some(ip)) => {
            let mut text = String::with_capacity(40);
            let _ = write!(text, "{ip}");
            h.update(text.as_bytes());
        }
        (None, None) => return None,
    }
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    Some((u64::from_be_bytes(first) % 100) as u32)
}

/// Checks every flag's name and spec; fields are `flags.<name>[.<field>]`.
pub fn validate_flags(flags: &BTreeMap<String, FlagSpec>) -> Result<(), FieldError> {
    for (name, spec) in flags {
        let field = format!("flags.{name}");
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(FieldError::new(
                field,
                "flag names use only ASCII letters, digits and `_`",
            ));
        }
        spec.validate().map_err(|e| e.under(&field))?;
    }
    Ok(())
}

/// The `Fastgate-Flags` value: `name=1` or `name=0` for every flag, comma-separated, in name
/// order (empty with no flags).
pub fn evaluate(
    flags: &BTreeMap<String, FlagSpec>,
    subject: Option<&str>,
    ip: Option<IpAddr>,
    country: Option<&str>,
    continent: Option<&str>,
) -> String {
    let mut out = String::with_capacity(flags.keys().map(|k| k.len() + 3).sum());
    for (name, spec) in flags {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(name);
        out.push_str(if spec.is_on(name, subject, ip, country, continent) {
            "=1"
        } else {
            "=0"
        });
    }
    out
}

/// Merges a Config Store override (`{"new_schema": {"enabled": true}}`) over `flags`. Each
/// entry replaces that flag's spec. All or nothing: on any error (field
/// `flags.<name>[.<field>]`) nothing is changed. A blank value is no override.
pub fn apply_overrides(
    flags: &mut BTreeMap<String, FlagSpec>,
    json: &str,
) -> Result<(), FieldError> {
    if json.trim().is_empty() {
        return Ok(());
    }
    let doc: Value = serde_json::from_str(json)
        .map_err(|e| FieldError::new("flags", format!("not valid JSON: {e}")))?;
    let Value::Object(entries) = doc else {
        return Err(FieldError::new(
            "flags",
            "must be a JSON object of flag name → flag",
        ));
    };
    let mut parsed = Vec::with_capacity(entries.len());
    for (name, value) in entries {
        let field = format!("flags.{name}");
        if !flags.contains_key(&name) {
            return Err(FieldError::new(
                field,
                "no such flag in the config (an override must name a configured flag)",
            ));
        }
        let spec: FlagSpec =
            serde_json::from_value(value).map_err(|e| FieldError::new(&*field, e.to_string()))?;
        spec.validate().map_err(|e| e.under(&field))?;
        parsed.push((name, spec));
    }
    flags.extend(parsed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(json: &str) -> BTreeMap<String, FlagSpec> {
        let f: BTreeMap<String, FlagSpec> = serde_json::from_str(json).unwrap();
        validate_flags(&f).unwrap();
        f
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn parses_the_three_shapes() {
        let f = flags(
            r#"{
                "new_schema": {"enabled": true},
                "beta": {"percent": 25},
                "eu_only": {"continents": ["EU"]},
                "de_jp": {"countries": ["DE", "JP"], "continents": []}
            }"#,
        );
        assert_eq!(f["new_schema"], FlagSpec::Switch(true));
        assert_eq!(f["beta"], FlagSpec::Percent(25));
        assert_eq!(
            f["eu_only"],
            FlagSpec::Target {
                countries: vec![],
                continents: vec!["EU".into()]
            }
        );
        assert_eq!(
            f["de_jp"],
            FlagSpec::Target {
                countries: vec!["DE".into(), "JP".into()],
                continents: vec![]
            }
        );
    }

    #[test]
    fn refuses_ambiguous_or_unknown_shapes() {
        for (bad, needle) in [
            (r#"{}"#, "needs one of"),
            (r#"{"enabled": true, "percent": 5}"#, "one kind"),
            (r#"{"percent": 5, "countries": ["DE"]}"#, "one kind"),
            (r#"{"enabled": true, "extra": 1}"#, "unknown field `extra`"),
            (r#"{"percent": -1}"#, ""),
            (r#"{"enabled": "yes"}"#, ""),
            (r#"true"#, ""),
        ] {
            let e = serde_json::from_str::<FlagSpec>(bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn validate_names_the_field() {
        let cases = [
            (r#"{"x": {"percent": 101}}"#, "flags.x.percent"),
            (r#"{"x": {"countries": []}}"#, "flags.x.countries"),
            (r#"{"x": {"countries": ["de"]}}"#, "flags.x.countries[0]"),
            (
                r#"{"x": {"countries": ["DE", "DEU"]}}"#,
                "flags.x.countries[1]",
            ),
            (
                r#"{"x": {"continents": ["EU", "XX"]}}"#,
                "flags.x.continents[1]",
            ),
            (r#"{"bad-name": {"enabled": true}}"#, "flags.bad-name"),
            (r#"{"": {"enabled": true}}"#, "flags."),
        ];
        for (json, field) in cases {
            let f: BTreeMap<String, FlagSpec> = serde_json::from_str(json).unwrap();
            assert_eq!(validate_flags(&f).unwrap_err().field, field, "{json}");
        }
        flags(r#"{"x": {"percent": 0}, "y": {"percent": 100}}"#);
    }

    #[test]
    fn header_value_is_name_ordered_pairs() {
        let f = flags(
            r#"{"zeta": {"enabled": true}, "new_schema": {"enabled": false}, "alpha": {"enabled": true}}"#,
        );
        assert_eq!(
            evaluate(&f, None, None, None, None),
            "alpha=1,new_schema=0,zeta=1"
        );
        assert_eq!(evaluate(&BTreeMap::new(), Some("u"), None, None, None), "");
        let f = flags(r#"{"new_schema": {"enabled": true}}"#);
        assert_eq!(evaluate(&f, None, None, None, None), "new_schema=1");
    }

    #[test]
    fn targeting_by_country_or_continent() {
        let f = flags(r#"{"t": {"countries": ["DE"], "continents": ["OC"]}}"#);
        let on = |country, continent| evaluate(&f, Some("u"), None, country, continent);
        assert_eq!(on(Some("DE"), Some("EU")), "t=1");
        assert_eq!(
            on(Some("de"), None),
            "t=1",
            "codes compare case-insensitively"
        );
        assert_eq!(on(Some("AU"), Some("OC")), "t=1");
        assert_eq!(on(Some("FR"), Some("EU")), "t=0");
        assert_eq!(on(None, None), "t=0");
        assert_eq!(on(Some(""), Some("")), "t=0");
    }

    #[test]
    fn rollout_bucket_is_the_documented_hash() {
        let digest = Sha256::digest(b"beta:user-42");
        let expected = (u64::from_be_bytes(digest[..8].try_into().unwrap()) % 100) as u32;
        assert_eq!(
            bucket("beta", Some("user-42"), ip("10.0.0.1")),
            Some(expected)
        );
        let digest = Sha256::digest(b"beta:2001:db8::1");
        let expected = (u64::from_be_bytes(digest[..8].try_into().unwrap()) % 100) as u32;
        assert_eq!(bucket("beta", None, ip("2001:db8::1")), Some(expected));
        assert_eq!(bucket("beta", Some(""), ip("2001:db8::1")), Some(expected));
        assert_eq!(bucket("beta", None, None), None);
    }

    #[test]
    fn rollout_is_stable_and_roughly_right_over_10000_subjects() {
        let f = flags(r#"{"beta": {"percent": 25}, "other": {"percent": 50}}"#);
        let (mut beta, mut other, mut both) = (0, 0, 0);
        for i in 0..10_000 {
            let subject = format!("user-{i}");
            let v = evaluate(&f, Some(&subject), ip("192.0.2.1"), Some("DE"), Some("EU"));
            assert_eq!(
                v,
                evaluate(&f, Some(&subject), ip("198.51.100.2"), None, None),
                "stable, and independent of IP and geo when a subject is known"
            );
            let b = v.contains("beta=1");
            let o = v.contains("other=1");
            beta += usize::from(b);
            other += usize::from(o);
            both += usize::from(b && o);
        }
        assert!((2_300..=2_700).contains(&beta), "beta: {beta}");
        assert!((4_750..=5_250).contains(&other), "other: {other}");
        // Independent populations: about 25% × 50% overlap, not min(25%, 50%).
        assert!((1_050..=1_450).contains(&both), "both: {both}");
        // The acceptance check's 1,000 subjects land within 20%..30% too.
        let on = (0..1_000)
            .filter(|i| f["beta"].is_on("beta", Some(&format!("subject-{i}")), None, None, None))
            .count();
        assert!((200..=300).contains(&on), "1000 subjects: {on}");
    }

    #[test]
    fn rollout_grows_monotonically_and_uses_the_ip_when_anonymous() {
        for i in 0..500 {
            let s = format!("s{i}");
            let mut was_on = false;
            for p in 0..=100 {
                let on = FlagSpec::Percent(p).is_on("f", Some(&s), None, None, None);
                assert!(
                    on || !was_on,
                    "raising the percentage never turns a client off"
                );
                was_on = on;
            }
            assert!(was_on);
        }
        let anon: usize = (0..=255u8)
            .map(|b| {
                let ip = Some(IpAddr::from([203, 0, 113, b]));
                usize::from(FlagSpec::Percent(50).is_on("f", None, ip, None, None))
            })
            .sum();
        assert!((90..=166).contains(&anon), "{anon}");
        assert!(!FlagSpec::Percent(99).is_on("f", None, None, None, None));
        assert!(FlagSpec::Percent(100).is_on("f", None, None, None, None));
        assert!(!FlagSpec::Percent(0).is_on("f", Some("x"), None, None, None));
        // Out-of-range specs that skipped validation still answer sanely.
        assert!(FlagSpec::Percent(250).is_on("f", None, None, None, None));
    }

    #[test]
    fn overrides_replace_configured_flags() {
        let mut f = flags(r#"{"new_schema": {"enabled": false}, "beta": {"percent": 10}}"#);
        apply_overrides(&mut f, r#"{"new_schema": {"enabled": true}}"#).unwrap();
        assert_eq!(evaluate(&f, None, None, None, None), "beta=0,new_schema=1");
        apply_overrides(
            &mut f,
            r#"{"beta": {"countries": ["DE"]}, "new_schema": {"percent": 0}}"#,
        )
        .unwrap();
        assert_eq!(
            evaluate(&f, None, None, Some("DE"), None),
            "beta=1,new_schema=0"
        );
        apply_overrides(&mut f, "  ").unwrap();
        apply_overrides(&mut f, "{}").unwrap();
        assert_eq!(
            evaluate(&f, None, None, Some("DE"), None),
            "beta=1,new_schema=0"
        );
    }

    #[test]
    fn bad_overrides_name_the_field_and_change_nothing() {
        let base = flags(r#"{"new_schema": {"enabled": false}, "beta": {"percent": 10}}"#);
        let cases = [
            (
                r#"{"new_schema": {"enabled": true}, "new_shema": {"enabled": true}}"#,
                "flags.new_shema",
            ),
            (
                r#"{"new_schema": {"enabled": true}, "beta": {"percent": 200}}"#,
                "flags.beta.percent",
            ),
            (
                r#"{"new_schema": {"enabled": true}, "beta": {"pct": 20}}"#,
                "flags.beta",
            ),
            (r#"{"new_schema": true}"#, "flags.new_schema"),
            (
                r#"{"beta": {"continents": ["EUROPE"]}}"#,
                "flags.beta.continents[0]",
            ),
            (r#"["new_schema"]"#, "flags"),
            (r#"{"new_schema": "#, "flags"),
        ];
        for (json, field) in cases {
            let mut f = base.clone();
            let FieldError { field: got, reason } = apply_overrides(&mut f, json).unwrap_err();
            assert_eq!(got, field, "{json}: {reason}");
            assert_eq!(f, base, "{json} must change nothing");
        }
    }

    use crate::test_rng::Rng;

    impl Rng {
        fn json(&mut self) -> String {
            const PIECES: &[&str] = &[
                "{",
                "}",
                "[",
                "]",
                ":",
                ",",
                "\"new_schema\"",
                "\"beta\"",
                "\"enabled\"",
                "\"percent\"",
                "\"countries\"",
                "\"continents\"",
                "true",
                "false",
                "25",
                "4294967296",
                "-1",
                "\"DE\"",
                "\"EU\"",
                "null",
                "\"é\"",
                " ",
                "\"",
            ];
            let n = (self.next() % 14) as usize;
            (0..n)
                .map(|_| PIECES[(self.next() % PIECES.len() as u64) as usize])
                .collect()
        }
    }

    #[test]
    fn random_inputs_never_panic() {
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        let base = flags(r#"{"new_schema": {"enabled": false}, "beta": {"percent": 10}}"#);
        for _ in 0..20_000 {
            let json = rng.json();
            let mut f = base.clone();
            match apply_overrides(&mut f, &json) {
                Ok(()) => validate_flags(&f).unwrap(),
                Err(_) => assert_eq!(f, base),
            }
            if let Ok(spec) = serde_json::from_str::<FlagSpec>(&json) {
                let _ = spec.validate();
                let _ = spec.is_on(&json, Some(&json), None, Some(&json), Some(&json));
            }
            let v = evaluate(&f, Some(&json), None, Some("DE"), None);
            assert_eq!(v.split(',').count(), 2, "{v}");
        }
    }
}
