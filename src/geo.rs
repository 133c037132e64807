//! Backend selection by client location: country, then continent, then the default list.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The continent codes the platform's geolocation reports: the keys a geo map's
/// `continents` and a flag's targeting may use.
pub const CONTINENTS: [&str; 7] = ["AF", "AN", "AS", "EU", "NA", "OC", "SA"];

/// Client location → ordered backend list. Lookup order: country, continent, default.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GeoMap {
    /// ISO 3166-1 alpha-2 country code → backends, most preferred first.
    #[serde(default)]
    pub countries: BTreeMap<String, Vec<String>>,
    /// Two-letter continent code (one of [`CONTINENTS`]) → backends.
    #[serde(default)]
    pub continents: BTreeMap<String, Vec<String>>,
    /// Used when the client's location is unknown or unmapped.
    pub default: Vec<String>,
}

/// What the platform's geolocation told us about the client. Both fields are optional:
/// an address without a geo record (or a partial one) falls through to the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientGeo {
    /// ISO 3166-1 alpha-2, upper case.
    pub country: Option<String>,
    /// Two-letter continent code, upper case.
    pub continent: Option<String>,
}

/// Which level of the geo map chose the backends; logged so ops can see why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeoLevel {
    Country,
    Continent,
    Default,
    /// The route named its own backends; geography was not consulted.
    Route,
}

impl GeoLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            GeoLevel::Country => "country",
            GeoLevel::Continent => "continent",
            GeoLevel::Default => "default",
            GeoLevel::Route => "route",
        }
    }
}

/// Returns the ordered backend list for a client, most preferred first.
pub fn select_backends<'a>(map: &'a GeoMap, geo: &ClientGeo) -> (&'a [String], GeoLevel) {
    if let Some(list) = geo.country.as_ref().and_then(|c| map.countries.get(c)) {
        return (list, GeoLevel::Country);
    }
    if let Some(list) = geo.continent.as_ref().and_then(|c| map.continents.get(c)) {
        return (list, GeoLevel::Continent);
    }
    (&map.default, GeoLevel::Default)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn geo(country: Option<&str>, continent: Option<&str>) -> ClientGeo {
        ClientGeo {
            country: country.map(Into::into),
            continent: continent.map(Into::into),
        }
    }

    #[test]
    fn country_then_continent_then_default() {
        let c = Config::parse(
            r#"{"version":"t","backends":{"a":{"region":"x"},"b":{"region":"y"},"c":{"region":"z"}},
                "geo":{"countries":{"FR":["c"]},"continents":{"EU":["b","a"]},"default":["a"]},
                "routes":[],"auth":{"issuers":[]}}"#,
        )
        .unwrap();
        let (l, lvl) = select_backends(&c.geo, &geo(Some("FR"), Some("EU")));
        assert_eq!((l, lvl), (&["c".to_string()][..], GeoLevel::Country));
        let (l, lvl) = select_backends(&c.geo, &geo(Some("DE"), Some("EU")));
        assert_eq!(l[0], "b");
        assert_eq!(lvl, GeoLevel::Continent);
        let (l, lvl) = select_backends(&c.geo, &geo(Some("ZZ"), Some("AN")));
        assert_eq!((l[0].as_str(), lvl), ("a", GeoLevel::Default));
        let (_, lvl) = select_backends(&c.geo, &ClientGeo::default());
        assert_eq!(lvl, GeoLevel::Default);
    }

    #[test]
    fn embedded_map_sends_the_five_test_locations_where_the_readme_says() {
        let c = Config::embedded().unwrap();
        let first =
            |cc: &str, ct: &str| select_backends(&c.geo, &geo(Some(cc), Some(ct))).0[0].clone();
        assert_eq!(first("US", "NA"), "origin_us");
        assert_eq!(first("DE", "EU"), "origin_eu");
        assert_eq!(first("JP", "AS"), "origin_ap");
        assert_eq!(first("AU", "OC"), "origin_ap");
        assert_eq!(first("BR", "SA"), "origin_us");
    }
}
