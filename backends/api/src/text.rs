//! Text handling shared by the summariser and retrieval, matching the reference's regexes:
//! sentences split on `(?<=[.!?])\s+`, words are `[a-z']+` of the lower-cased text.

/// Python's `str.isspace` (what `\s` and `str.strip/split` use).
pub fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `[s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]`.
pub fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut prev: Option<char> = None;
    let mut iter = text.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        if is_py_space(c) && matches!(prev, Some('.' | '!' | '?')) {
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = iter.peek() {
                if !is_py_space(d) {
                    break;
                }
                end = j + d.len_utf8();
                iter.next();
            }
            push_trimmed(&mut out, &text[start..i]);
            start = end;
            prev = None;
            continue;
        }
        prev = Some(c);
    }
    push_trimmed(&mut out, &text[start..]);
    out
}

fn push_trimmed<'a>(out: &mut Vec<&'a str>, s: &'a str) {
    let t = s.trim_matches(is_py_space);
    if !t.is_empty() {
        out.push(t);
    }
}

/// `re.findall(r"[a-z']+", text.lower())`.
pub fn words(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in lower.chars() {
        if c.is_ascii_lowercase() || c == '\'' {
            cur.push(c);
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The reference's `_summarize`: keep the `n` sentences whose words are most frequent in the
/// whole text (normalised by length), in their original order.
pub fn summarize(text: &str, n: usize) -> String {
    let sents = sentences(text);
    let mut freq = std::collections::HashMap::<String, u64>::new();
    for w in words(text) {
        *freq.entry(w).or_default() += 1;
    }
    let key = |s: &str| {
        let total: u64 = words(s)
            .iter()
            .map(|w| freq.get(w).copied().unwrap_or(0))
            .sum();
        let len = s.split(is_py_space).filter(|p| !p.is_empty()).count();
        -(total as f64) / (1.0 + len as f64)
    };
    let keys: Vec<f64> = sents.iter().map(|s| key(s)).collect();
    let mut order: Vec<usize> = (0..sents.len()).collect();
    // Stable, like Python's sorted: ties keep document order.
    order.sort_by(|a, b| keys[*a].total_cmp(&keys[*b]));
    let mut top: Vec<usize> = order.into_iter().take(n).collect();
    top.sort_unstable();
    top.iter().map(|i| sents[*i]).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_python() {
        assert_eq!(
            sentences("A b. C d!  E?\nF"),
            vec!["A b.", "C d!", "E?", "F"]
        );
        assert_eq!(sentences("  "), Vec::<&str>::new());
        assert_eq!(sentences("x.y z"), vec!["x.y z"]);
    }

    #[test]
    fn words_like_python() {
        assert_eq!(words("It's 2 Cats, DOGS"), vec!["it's", "cats", "dogs"]);
    }

    #[test]
    fn summarize_picks_frequent_sentences_in_order() {
        let text =
            "Cats are great. Dogs bark loudly at night. Cats love cats and cats. Birds sing.";
        assert_eq!(
            summarize(text, 2),
            "Cats are great. Cats love cats and cats."
        );
        assert_eq!(summarize("Only one.", 2), "Only one.");
    }
}
