//! Retrieval for `/api/query`: Okapi BM25 over the sentences of every stored document.
//! The reference scores term overlap / sqrt(length); BM25 adds term rarity (idf) and
//! saturating term frequency, so common words stop dominating answers.

use std::collections::{HashMap, HashSet};

use crate::text;

const K1: f64 = 1.2;
const B: f64 = 0.75;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Answer {
    pub answer: String,
    pub sources: usize,
}

/// Ranks all sentences of `documents` against `query`; the answer is the best three joined
/// by a space, `sources` counts sentences that share at least one term with the query.
pub fn answer(query: &str, documents: &[String]) -> Answer {
    let terms: HashSet<String> = text::words(query).into_iter().collect();
    let sentences: Vec<(&str, Vec<String>)> = documents
        .iter()
        .flat_map(|d| text::sentences(d))
        .map(|s| (s, text::words(s)))
        .collect();
    if terms.is_empty() || sentences.is_empty() {
        return Answer {
            answer: String::new(),
            sources: 0,
        };
    }
    let n = sentences.len() as f64;
    let avg_len = sentences.iter().map(|(_, w)| w.len()).sum::<usize>() as f64 / n;
    let mut df: HashMap<&str, usize> = HashMap::new();
    for (_, words) in &sentences {
        let unique: HashSet<&str> = words.iter().map(String::as_str).collect();
        for t in unique.into_iter().filter(|t| terms.contains(*t)) {
            *df.entry(t).or_default() += 1;
        }
    }
    let mut scored: Vec<(f64, &str)> = sentences
        .iter()
        .filter_map(|(s, words)| {
            let mut tf: HashMap<&str, usize> = HashMap::new();
            for w in words.iter().filter(|w| terms.contains(*w)) {
                *tf.entry(w.as_str()).or_default() += 1;
            }
            if tf.is_empty() {
                return None;
            }
            let len = words.len() as f64;
            let score = tf
                .iter()
                .map(|(t, f)| {
                    let d = df.get(t).copied().unwrap_or(0) as f64;
                    let idf = (1.0 + (n - d + 0.5) / (d + 0.5)).ln();
                    let f = *f as f64;
                    idf * f * (K1 + 1.0) / (f + K1 * (1.0 - B + B * len / avg_len.max(1.0)))
                })
                .sum::<f64>();
            Some((score, *s))
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    Answer {
        answer: scored
            .iter()
            .take(3)
            .map(|(_, s)| *s)
            .collect::<Vec<_>>()
            .join(" "),
        sources: scored.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_rare_terms_first_and_counts_matches() {
        let docs = vec![
            "The cat sat. The dog ran. A zebra grazed quietly.".to_owned(),
            "The zebra and the cat met.".to_owned(),
        ];
        let a = answer("zebra cat", &docs);
        assert_eq!(a.sources, 3);
        assert!(a.answer.starts_with("The zebra and the cat met."));
        assert_eq!(
            answer("nothing", &docs),
            Answer {
                answer: String::new(),
                sources: 0
            }
        );
    }
}
