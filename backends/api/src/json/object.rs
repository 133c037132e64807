//! Building a JSON object the way CPython's `json.loads` builds a dict, in linear time.
//!
//! A repeated key keeps the position of its first occurrence and takes the value of its
//! last. Finding the earlier occurrence by scanning the members read so far costs O(n) per
//! key, O(n²) per object: 50,000 distinct keys (585 KiB) took seconds of CPU. Small objects,
//! which are nearly all of them, are still scanned (a few string compares beat hashing);
//! past [`SCAN_MAX`] members a hash index (SipHash with a random key, so colliding keys
//! cannot be crafted) finds the earlier occurrence in O(1).

use std::collections::HashMap;

use super::Value;

/// Members an object may hold before lookups switch from a scan to the hash index.
const SCAN_MAX: usize = 8;

/// The members of one object being parsed, in first-occurrence order.
#[derive(Debug, Default)]
pub(super) struct Members {
    fields: Vec<(String, Value)>,
    /// Key → position in `fields`; built once `fields` outgrows [`SCAN_MAX`].
    index: Option<HashMap<String, usize>>,
    /// Members written so far, duplicates included: what the parser's cap counts.
    written: usize,
}

impl Members {
    /// Members written so far, duplicates included.
    pub(super) fn written(&self) -> usize {
        self.written
    }

    /// Adds a member: a new key goes last, a repeated one overwrites its value in place.
    pub(super) fn insert(&mut self, key: String, value: Value) {
        self.written += 1;
        if let Some(slot) = self.position(&key) {
            self.fields[slot].1 = value;
            return;
        }
        let slot = self.fields.len();
        match &mut self.index {
            Some(index) => {
                index.insert(key.clone(), slot);
            }
            None if slot >= SCAN_MAX => {
                let mut index: HashMap<String, usize> = self
                    .fields
                    .iter()
                    .enumerate()
                    .map(|(i, (k, _))| (k.clone(), i))
                    .collect();
                index.insert(key.clone(), slot);
                self.index = Some(index);
            }
            None => {}
        }
        self.fields.push((key, value));
    }

    fn position(&self, key: &str) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(key).copied(),
            None => self.fields.iter().position(|(k, _)| k == key),
        }
    }

    /// The finished object's members, duplicates collapsed.
    pub(super) fn into_vec(self) -> Vec<(String, Value)> {
        self.fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(pairs: &[(&str, i32)]) -> Vec<(String, Value)> {
        let mut m = Members::default();
        for (k, v) in pairs {
            m.insert((*k).to_owned(), Value::Number(v.to_string()));
        }
        assert_eq!(m.written(), pairs.len());
        m.into_vec()
    }

    fn keys_and_values(fields: &[(String, Value)]) -> Vec<(String, String)> {
        fields
            .iter()
            .map(|(k, v)| (k.clone(), v.to_compact()))
            .collect()
    }

    /// The same dict semantics below and above the scan/index switch: first position, last
    /// value, whether the duplicate comes before or after the index is built.
    #[test]
    fn duplicates_keep_first_position_and_last_value_on_both_paths() {
        let small = build(&[("b", 1), ("a", 2), ("b", 3)]);
        assert_eq!(
            keys_and_values(&small),
            [("b".into(), "3".into()), ("a".into(), "2".into())]
        );
        let mut pairs: Vec<(String, i32)> = (0..20).map(|i| (format!("k{i}"), i)).collect();
        pairs.insert(3, ("k15".into(), -1)); // seen early, redefined after the switch
        pairs.push(("k2".into(), 99)); // seen before the switch, redefined after
        pairs.push(("k19".into(), 77)); // seen after the switch, redefined after
        let refs: Vec<(&str, i32)> = pairs.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        let big = keys_and_values(&build(&refs));
        let mut expected: Vec<(String, String)> = Vec::new();
        for (k, v) in &pairs {
            match expected.iter_mut().find(|(ek, _)| ek == k) {
                Some(slot) => slot.1 = v.to_string(),
                None => expected.push((k.clone(), v.to_string())),
            }
        }
        assert_eq!(big, expected);
        assert_eq!(big[3], ("k15".into(), "15".into()));
        assert_eq!(big.len(), 20);
    }
}
