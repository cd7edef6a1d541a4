//! Secret values out of what operators read: a call's stderr reaches the
//! log (the worker logs it) and the invocation log (`GET
//! /function/NAME/invocations`, the dashboard). A function that writes its
//! secret to stderr (`auth failed with token ...`, a traceback showing the
//! value) must not put it there; only the call's own answer carries what
//! the function printed.

use std::borrow::Cow;

/// `text` with every occurrence of each non-empty secret value replaced by
/// `[secret NAME]`. Matches are found in the original text, and
/// overlapping ones (two secrets sharing bytes, or one value overlapping
/// itself) are merged before anything is replaced, so no part of a value
/// is left beside a marker. Apply before cutting `text`: a cut could
/// otherwise fall inside a value and keep its start.
pub fn redact_secrets<'t, 's>(
    text: &'t [u8],
    secrets: impl IntoIterator<Item = (&'s str, &'s [u8])>,
) -> Cow<'t, [u8]> {
    // (start, end, name) of every match.
    let mut hits: Vec<(usize, usize, &str)> = Vec::new();
    for (name, value) in secrets {
        if value.is_empty() || value.len() > text.len() {
            continue;
        }
        // Overlapping occurrences too (find_iter skips them: "abcab" in
        // "abcabcab" would leave "cab"). An occurrence overlapping a match
        // by at least the value's period continues the match's periodic
        // run, so the run is extended byte by byte; the search resumes
        // where a new occurrence could start past the run. Linear in
        // `text`, even for "aaa…" in a megabyte of "a".
        let finder = memchr::memmem::Finder::new(value);
        let period = smallest_period(value);
        let mut at = 0;
        while let Some(found) = finder.find(&text[at..]) {
            let start = at + found;
            let mut end = start + value.len();
            while end < text.len() && text[end] == text[end - period] {
                end += 1;
            }
            hits.push((start, end, name));
            at = (end + 1 - value.len()).max(start + 1);
            if at >= text.len() {
                break;
            }
        }
    }
    if hits.is_empty() {
        return Cow::Borrowed(text);
    }
    hits.sort_unstable_by_key(|&(start, end, _)| (start, std::cmp::Reverse(end)));
    let mut out = Vec::with_capacity(text.len());
    let mut done = 0;
    let mut hits = hits.into_iter().peekable();
    while let Some((start, mut end, name)) = hits.next() {
        while let Some(&(next, next_end, _)) = hits.peek() {
            if next >= end {
                break;
            }
            end = end.max(next_end);
            hits.next();
        }
        out.extend_from_slice(&text[done..start]);
        out.extend_from_slice(format!("[secret {name}]").as_bytes());
        done = end;
    }
    out.extend_from_slice(&text[done..]);
    Cow::Owned(out)
}

/// The smallest p with `v[i] == v[i + p]` for every i (KMP's failure
/// function); `v` is not empty.
fn smallest_period(v: &[u8]) -> usize {
    let mut border = vec![0usize; v.len()];
    for i in 1..v.len() {
        let mut k = border[i - 1];
        while k > 0 && v[i] != v[k] {
            k = border[k - 1];
        }
        if v[i] == v[k] {
            k += 1;
        }
        border[i] = k;
    }
    v.len() - border[v.len() - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redact(text: &str, secrets: &[(&str, &str)]) -> String {
        let secrets = secrets.iter().map(|(n, v)| (*n, v.as_bytes()));
        String::from_utf8(redact_secrets(text.as_bytes(), secrets).into_owned()).unwrap()
    }

    #[test]
    fn every_occurrence_is_replaced_by_the_secrets_name() {
        assert_eq!(
            redact("token=hunter2; again hunter2", &[("db", "hunter2")]),
            "token=[secret db]; again [secret db]"
        );
        assert_eq!(redact("nothing here", &[("db", "hunter2")]), "nothing here");
        assert_eq!(redact("x", &[("empty", "")]), "x");
    }

    #[test]
    fn a_periodic_value_in_a_long_run_is_redacted_in_linear_time() {
        let value = vec![b'a'; 64 * 1024];
        let text = vec![b'a'; 4 * 1024 * 1024];
        let started = std::time::Instant::now();
        let out = redact_secrets(&text, [("big", value.as_slice())]);
        assert_eq!(&*out, b"[secret big]");
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert_eq!(smallest_period(b"abcab"), 3);
        assert_eq!(smallest_period(b"abcd"), 4);
        assert_eq!(smallest_period(b"x"), 1);
    }

    #[test]
    fn overlapping_values_leave_no_part_visible() {
        // Two secrets sharing bytes: neither's rest survives.
        assert_eq!(
            redact(
                "<hello world peace>",
                &[("a", "hello world"), ("b", "world peace")]
            ),
            "<[secret a]>"
        );
        // A value overlapping itself.
        assert_eq!(redact("aaaa", &[("a", "aaa")]), "[secret a]");
        assert_eq!(redact("-abcabcab-", &[("p", "abcab")]), "-[secret p]-");
        assert_eq!(redact("aabaaabaa", &[("q", "aabaa")]), "[secret q]");
        assert_eq!(
            redact("abcab abcab", &[("p", "abcab")]),
            "[secret p] [secret p]"
        );
        // One inside another.
        assert_eq!(
            redact("xx-long-secret-xx", &[("s", "long"), ("l", "long-secret")]),
            "xx-[secret l]-xx"
        );
    }
}
