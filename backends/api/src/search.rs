//! Retrieval for `/api/query`: Okapi BM25 over the sentences of the caller's own documents.
//! The reference scores term overlap / sqrt(length); BM25 adds term rarity (idf) and
//! saturating term frequency, so common words stop dominating answers.
//!
//! Deviation from the reference, on purpose: the reference searches every user's documents,
//! which in a multi-tenant service hands one customer's uploads to another. Here the corpus
//! is the caller's uploads only ([`corpus_of`]), found through an index, never a scan.

use std::collections::{HashMap, HashSet};

use sqlx::Row;

use crate::db::Db;
use crate::text;

/// The texts of the documents `owner` uploaded, oldest first: the retrieval corpus.
///
/// A document's owner is recorded on its summary, written in the same transaction as the
/// document under the same unique object key, so the join is exact. The plan is an index
/// range on `summaries_by_user (user_id, id)`, then one primary-key lookup in `documents`
/// per row: the cost grows with the caller's own uploads, not with everyone's.
pub async fn corpus_of(db: &Db, owner: &str) -> Result<Vec<String>, sqlx::Error> {
    let rows = sqlx::query(CORPUS_OF)
        .bind(owner)
        .fetch_all(&db.pool)
        .await?;
    rows.into_iter().map(|r| r.try_get(0)).collect()
}

/// [`corpus_of`]'s query, public so a test can check its plan.
pub const CORPUS_OF: &str = "SELECT d.content FROM summaries s JOIN documents d ON d.key = s.key \
     WHERE s.user_id = $1 ORDER BY d.created_at, d.key";

const K1: f64 = 1.2;
const B: f64 = 0.75;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Answer {
    pub answer: String,
    pub sources: usize,
}

/// Ranks all sentences of `documents` (the caller's corpus) against `query`; the answer is the best three joined
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
