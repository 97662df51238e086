//! Label sets as Alertmanager handles them: [`LabelSet`], the [`Fingerprint`] of a label set
//! (`model.LabelSet.Fingerprint`, FNV-1a over the sorted pairs), the text form Alertmanager
//! puts in group keys (`{a="1", b="2"}`, Go-quoted values) and label-name validity.

use std::collections::BTreeMap;
use std::fmt;

/// An alert's labels: name to value. A label that is absent reads as the empty string, as in
/// Alertmanager.
pub type LabelSet = BTreeMap<String, String>;

/// The 64-bit fingerprint Alertmanager gives a label set, shown as 16 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fingerprint(pub u64);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// FNV-1a 64-bit offset basis, as in prometheus/common's `model` package.
const FNV_OFFSET: u64 = 14_695_981_039_346_656_037;
/// FNV-1a 64-bit prime.
const FNV_PRIME: u64 = 1_099_511_628_211;
/// The byte that separates names and values in the hash (`model.SeparatorByte`).
const SEPARATOR: u8 = 255;

/// The fingerprint of a label set, as `model.LabelSet.Fingerprint` computes it.
pub fn fingerprint(labels: &LabelSet) -> Fingerprint {
    fn add(mut hash: u64, bytes: &[u8]) -> u64 {
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(FNV_PRIME);
        }
        hash
    }
    let mut hash = FNV_OFFSET;
    // BTreeMap iterates in byte order of names, the order Go sorts them in.
    for (name, value) in labels {
        hash = add(hash, name.as_bytes());
        hash = add(hash, &[SEPARATOR]);
        hash = add(hash, value.as_bytes());
        hash = add(hash, &[SEPARATOR]);
    }
    Fingerprint(hash)
}

/// The text `model.LabelSet.String()` gives: `name="value"` pairs with Go-quoted values,
/// sorted as strings and joined by `, ` inside braces.
pub fn label_set_string(labels: &LabelSet) -> String {
    let mut pairs: Vec<String> = labels
        .iter()
        .map(|(name, value)| format!("{name}={}", go_quote(value)))
        .collect();
    // Go sorts the formatted pairs, not the names: `a0="x"` comes before `a="x"`.
    pairs.sort();
    format!("{{{}}}", pairs.join(", "))
}

/// Whether `name` is a valid label name for Alertmanager 0.25's configuration checks
/// (`model.LabelNameRE`: `^[a-zA-Z_][a-zA-Z0-9_]*$`).
pub fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) if first.is_ascii_alphabetic() || first == '_' => {
            chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        _ => false,
    }
}

/// Quotes a string as Go's `strconv.Quote` does: `"` and `\` escaped, printable characters
/// kept, others as `\n`, `\x01`, `\u00a0`.
pub fn go_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if is_go_printable(c) => out.push(c),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// An approximation of Go's `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols
/// and the ASCII space. Controls, other spaces, format characters and private use are not
/// printable. (Unassigned code points, which Go also escapes, are not told apart.)
fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let code = c as u32;
    let format_or_private = matches!(
        code,
        0xAD | 0x600..=0x605
            | 0x61C
            | 0x6DD
            | 0x70F
            | 0x890..=0x891
            | 0x8E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
            | 0xE000..=0xF8FF
            | 0xF0000..=0x10FFFF
    );
    !format_or_private
}

/// A label set from `(name, value)` pairs.
pub fn label_set(pairs: &[(&str, &str)]) -> LabelSet {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::labels::label_set as labels;

    #[test]
    fn empty_label_set_has_the_fnv_offset_as_fingerprint() {
        assert_eq!(fingerprint(&LabelSet::new()).0, FNV_OFFSET);
        assert_eq!(
            fingerprint(&LabelSet::new()).to_string(),
            "cbf29ce484222325"
        );
    }

    #[test]
    fn fingerprint_depends_on_names_and_values() {
        let a = fingerprint(&labels(&[("a", "b")]));
        let b = fingerprint(&labels(&[("ab", "")]));
        assert_ne!(a, b);
        assert_eq!(a, fingerprint(&labels(&[("a", "b")])));
    }

    #[test]
    fn label_set_string_sorts_formatted_pairs_as_go_does() {
        let set = labels(&[("a", "1"), ("a0", "2"), ("b", "x\"y\n")]);
        assert_eq!(label_set_string(&set), r#"{a0="2", a="1", b="x\"y\n"}"#);
        assert_eq!(label_set_string(&LabelSet::new()), "{}");
    }

    #[test]
    fn go_quote_escapes_like_strconv_quote() {
        assert_eq!(go_quote("plain"), "\"plain\"");
        assert_eq!(go_quote("tab\there"), "\"tab\\there\"");
        assert_eq!(go_quote("\u{1}"), "\"\\x01\"");
        assert_eq!(go_quote("\u{a0}"), "\"\\u00a0\"");
        assert_eq!(go_quote("é✓"), "\"é✓\"");
        assert_eq!(go_quote("back\\slash"), "\"back\\\\slash\"");
    }

    #[test]
    fn label_names_follow_the_prometheus_rule() {
        assert!(is_valid_label_name("alertname"));
        assert!(is_valid_label_name("_x9"));
        assert!(!is_valid_label_name(""));
        assert!(!is_valid_label_name("9x"));
        assert!(!is_valid_label_name("a-b"));
        assert!(!is_valid_label_name("a:b"));
    }
}
