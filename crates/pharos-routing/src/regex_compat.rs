//! Go's `regexp` syntax (RE2, as Go 1.19 built Alertmanager 0.25) on top of the `regex` crate.
//!
//! The two dialects mostly agree; where they differ the pattern is rewritten or refused so that
//! a pattern means what it means in Alertmanager:
//!
//! - `\d \s \w \b` are ASCII-only in Go (Unicode in Rust): rewritten to explicit ASCII classes;
//! - `\Q...\E` quoting and octal escapes (`\012`) exist only in Go: rewritten to literals;
//! - an escaped ASCII punctuation character is always a literal in Go (`\<` is `<`, a word
//!   boundary in Rust);
//! - a `{` that does not start a valid repetition is a literal in Go (`a{,3}`, `x{`);
//! - `[[]` and `&&`/`~~` inside classes are literals in Go (nesting and set operations in Rust);
//! - Go refuses stacked repetitions (`a**`, `a{2}{3}`), repeat counts above 1000, flags other
//!   than `imsU` (`(?x)`) and `(?<name>`: so does this module;
//! - capture names are dropped (matching never uses them), so Go's tolerance of duplicate names
//!   is kept.

use regex::Regex;

use crate::error::{ConfigError, Result};

/// Go's largest repeat count (`{n,m}` with n or m above it is refused).
const MAX_REPEAT: u32 = 1000;

/// Compiles `pattern` (already anchored by the caller if it wants) with Go's syntax.
pub fn compile(pattern: &str) -> Result<Regex> {
    let translated = translate(pattern).map_err(|reason| ConfigError::Regex {
        pattern: pattern.to_string(),
        reason,
    })?;
    Regex::new(&translated).map_err(|err| ConfigError::Regex {
        pattern: pattern.to_string(),
        reason: rust_reason(&err),
    })
}

/// The useful line of a `regex` crate error (its display spans several lines).
fn rust_reason(err: &regex::Error) -> String {
    let text = err.to_string();
    text.lines()
        .rev()
        .find(|line| line.trim_start().starts_with("error:"))
        .map(|line| {
            line.trim_start()
                .trim_start_matches("error:")
                .trim()
                .to_string()
        })
        .unwrap_or(text)
}

/// Rewrites a Go pattern into an equivalent `regex` crate pattern, or says why Go refuses it.
fn translate(pattern: &str) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut i = 0;
    // Whether the previous item was a repetition operator (Go refuses another right after).
    let mut after_repeat = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                i = translate_escape(&chars, i, &mut out, false)?;
                after_repeat = false;
            }
            '[' => {
                i = translate_class(&chars, i, &mut out)?;
                after_repeat = false;
            }
            '(' => {
                i = translate_group_open(&chars, i, &mut out)?;
                after_repeat = false;
            }
            '*' | '+' | '?' => {
                if after_repeat {
                    return Err(format!(
                        "invalid nested repetition operator: `{}`",
                        repeat_context(&chars, i)
                    ));
                }
                out.push(c);
                i += 1;
                if chars.get(i) == Some(&'?') {
                    out.push('?');
                    i += 1;
                }
                after_repeat = true;
            }
            '{' => match parse_repeat(&chars, i) {
                Some((min, max, end)) => {
                    if min > MAX_REPEAT || max.is_some_and(|m| m > MAX_REPEAT || m < min) {
                        let text: String = chars[i..end].iter().collect();
                        return Err(format!("invalid repeat count: `{text}`"));
                    }
                    if after_repeat {
                        return Err(format!(
                            "invalid nested repetition operator: `{}`",
                            repeat_context(&chars, i)
                        ));
                    }
                    out.extend(&chars[i..end]);
                    i = end;
                    if chars.get(i) == Some(&'?') {
                        out.push('?');
                        i += 1;
                    }
                    after_repeat = true;
                }
                None => {
                    out.push_str("\\{");
                    i += 1;
                    after_repeat = false;
                }
            },
            '}' => {
                out.push_str("\\}");
                i += 1;
                after_repeat = false;
            }
            _ => {
                out.push(c);
                i += 1;
                after_repeat = false;
            }
        }
    }
    Ok(out)
}

/// The text Go shows for a stacked repetition: the operator before and the one at `at`.
fn repeat_context(chars: &[char], at: usize) -> String {
    let start = at.saturating_sub(1);
    chars[start..=at].iter().collect()
}

/// Parses `{n}`, `{n,}` or `{n,m}` at `start`; `None` when the brace is a literal in Go.
fn parse_repeat(chars: &[char], start: usize) -> Option<(u32, Option<u32>, usize)> {
    let mut i = start + 1;
    let read_number = |i: &mut usize| -> Option<u32> {
        let begin = *i;
        while *i < chars.len() && chars[*i].is_ascii_digit() {
            *i += 1;
        }
        if *i == begin {
            return None;
        }
        let text: String = chars[begin..*i].iter().collect();
        // Go treats counts it cannot represent as invalid (reported as a bad count).
        Some(text.parse::<u32>().unwrap_or(u32::MAX))
    };
    let min = read_number(&mut i)?;
    let max = match chars.get(i) {
        Some('}') => Some(min),
        Some(',') => {
            i += 1;
            if chars.get(i) == Some(&'}') {
                None
            } else {
                let max = read_number(&mut i)?;
                if chars.get(i) != Some(&'}') {
                    return None;
                }
                Some(max)
            }
        }
        _ => return None,
    };
    Some((min, max, i + 1))
}

/// Translates `(`, `(?flags)`, `(?flags:` or `(?P<name>` at `start`.
fn translate_group_open(chars: &[char], start: usize, out: &mut String) -> Result<usize, String> {
    if chars.get(start + 1) != Some(&'?') {
        out.push('(');
        return Ok(start + 1);
    }
    if chars.get(start + 2) == Some(&'P') && chars.get(start + 3) == Some(&'<') {
        let name_start = start + 4;
        let mut end = name_start;
        while end < chars.len() && chars[end] != '>' {
            end += 1;
        }
        if end >= chars.len() {
            let text: String = chars[start..].iter().collect();
            return Err(format!("invalid named capture: `{text}`"));
        }
        let name: String = chars[name_start..end].iter().collect();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            let text: String = chars[start..=end].iter().collect();
            return Err(format!("invalid named capture: `{text}`"));
        }
        // Names are never used for matching; dropping them keeps Go's tolerance of duplicates.
        out.push('(');
        return Ok(end + 1);
    }
    // Flags: (?imsU-imsU) or (?imsU-imsU:...).
    let mut i = start + 2;
    let mut seen_minus = false;
    let mut flags_since_minus = 0;
    let mut any_flag = false;
    while i < chars.len() {
        match chars[i] {
            'i' | 'm' | 's' | 'U' => {
                any_flag = true;
                flags_since_minus += 1;
            }
            '-' if !seen_minus => {
                seen_minus = true;
                flags_since_minus = 0;
            }
            ':' | ')' => {
                if seen_minus && flags_since_minus == 0 {
                    break;
                }
                if chars[i] == ')' && !any_flag {
                    // `(?)` sets no flag: Go accepts it as nothing.
                    return Ok(i + 1);
                }
                out.extend(&chars[start..=i]);
                return Ok(i + 1);
            }
            _ => break,
        }
        i += 1;
    }
    let shown: String = if chars.get(start + 2) == Some(&'<') {
        "(?<".to_string()
    } else {
        chars[start..(i + 1).min(chars.len())].iter().collect()
    };
    Err(format!("invalid or unsupported Perl syntax: `{shown}`"))
}

/// Translates the escape at `start` (a backslash); `in_class` for escapes inside `[...]`.
fn translate_escape(
    chars: &[char],
    start: usize,
    out: &mut String,
    in_class: bool,
) -> Result<usize, String> {
    let Some(&c) = chars.get(start + 1) else {
        return Err("trailing backslash at end of expression: ``".to_string());
    };
    let next = start + 2;
    match c {
        'd' => out.push_str(if in_class { "0-9" } else { "[0-9]" }),
        'D' => out.push_str("[^0-9]"),
        's' => out.push_str(if in_class {
            "\\t\\n\\x0C\\r "
        } else {
            "[\\t\\n\\x0C\\r ]"
        }),
        'S' => out.push_str("[^\\t\\n\\x0C\\r ]"),
        'w' => out.push_str(if in_class {
            "0-9A-Za-z_"
        } else {
            "[0-9A-Za-z_]"
        }),
        'W' => out.push_str("[^0-9A-Za-z_]"),
        'b' | 'B' if !in_class => {
            out.push_str(if c == 'b' { "(?-u:\\b)" } else { "(?-u:\\B)" });
        }
        'A' | 'z' if !in_class => {
            out.push('\\');
            out.push(c);
        }
        'a' | 'f' | 'n' | 'r' | 't' | 'v' => {
            out.push('\\');
            out.push(c);
        }
        'Q' if !in_class => {
            let mut i = next;
            let mut literal = String::new();
            while i < chars.len() {
                if chars[i] == '\\' && chars.get(i + 1) == Some(&'E') {
                    i += 2;
                    return {
                        out.push_str(&regex::escape(&literal));
                        Ok(i)
                    };
                }
                literal.push(chars[i]);
                i += 1;
            }
            out.push_str(&regex::escape(&literal));
            return Ok(i);
        }
        'p' | 'P' => {
            out.push('\\');
            out.push(c);
            match chars.get(next) {
                Some('{') => {
                    let mut i = next;
                    while i < chars.len() && chars[i] != '}' {
                        out.push(chars[i]);
                        i += 1;
                    }
                    if i >= chars.len() {
                        let text: String = chars[start..].iter().collect();
                        return Err(format!("invalid character class range: `{text}`"));
                    }
                    out.push('}');
                    return Ok(i + 1);
                }
                Some(&letter) => {
                    out.push(letter);
                    return Ok(next + 1);
                }
                None => return Err(format!("invalid character class range: `\\{c}`")),
            }
        }
        'x' => {
            out.push_str("\\x");
            match chars.get(next) {
                Some('{') => {
                    let mut i = next;
                    while i < chars.len() && chars[i] != '}' {
                        out.push(chars[i]);
                        i += 1;
                    }
                    if i >= chars.len() {
                        let text: String = chars[start..].iter().collect();
                        return Err(format!("invalid escape sequence: `{text}`"));
                    }
                    out.push('}');
                    return Ok(i + 1);
                }
                _ => {
                    let digits: String = chars[next..].iter().take(2).collect();
                    if digits.len() != 2 || !digits.chars().all(|d| d.is_ascii_hexdigit()) {
                        let text: String = chars[start..(next + digits.chars().count())]
                            .iter()
                            .collect();
                        return Err(format!("invalid escape sequence: `{text}`"));
                    }
                    out.push_str(&digits);
                    return Ok(next + 2);
                }
            }
        }
        '1'..='7' if !chars.get(next).is_some_and(|d| d.is_ascii_digit()) => {
            return Err(format!("invalid escape sequence: `\\{c}`"));
        }
        '0'..='7' => {
            // Octal: up to three digits in all.
            let mut value = 0u32;
            let mut i = start + 1;
            while i < chars.len() && i < start + 4 && ('0'..='7').contains(&chars[i]) {
                value = value * 8 + (chars[i] as u32 - '0' as u32);
                i += 1;
            }
            out.push_str(&format!("\\x{{{value:x}}}"));
            return Ok(i);
        }
        c if c.is_ascii() && !c.is_ascii_alphanumeric() => {
            out.push_str(&regex::escape(&c.to_string()));
        }
        _ => return Err(format!("invalid escape sequence: `\\{c}`")),
    }
    Ok(next)
}

/// Translates a character class starting at the `[` at `start`.
fn translate_class(chars: &[char], start: usize, out: &mut String) -> Result<usize, String> {
    let mut i = start + 1;
    out.push('[');
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    // A `]` right after `[` or `[^` is a literal in Go.
    if chars.get(i) == Some(&']') {
        out.push_str("\\]");
        i += 1;
    }
    while i < chars.len() {
        match chars[i] {
            ']' => {
                out.push(']');
                return Ok(i + 1);
            }
            '\\' => {
                i = translate_escape(chars, i, out, true)?;
            }
            '[' if chars.get(i + 1) == Some(&':') => {
                // A POSIX class such as [:alpha:] or [:^digit:].
                let mut end = i + 2;
                while end + 1 < chars.len() && !(chars[end] == ':' && chars[end + 1] == ']') {
                    end += 1;
                }
                if end + 1 >= chars.len() {
                    out.push_str("\\[");
                    i += 1;
                } else {
                    out.extend(&chars[i..end + 2]);
                    i = end + 2;
                }
            }
            '[' | '&' | '~' => {
                out.push('\\');
                out.push(chars[i]);
                i += 1;
            }
            '-' if chars.get(i + 1) == Some(&'-') => {
                out.push_str("\\-");
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    let text: String = chars[start..].iter().collect();
    Err(format!("missing closing ]: `{text}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anchored(pattern: &str) -> Result<Regex> {
        compile(&format!("^(?:{pattern})$"))
    }

    fn is_match(pattern: &str, text: &str) -> bool {
        anchored(pattern)
            .map(|re| re.is_match(text))
            .unwrap_or(false)
    }

    #[test]
    fn perl_classes_are_ascii_only_as_in_go() {
        assert!(is_match(r"\d+", "123"));
        assert!(!is_match(r"\d", "٣"));
        assert!(!is_match(r"\w", "é"));
        assert!(is_match(r"\W", "é"));
        assert!(!is_match(r"\s", "\u{a0}"));
        assert!(is_match(r"[\d\s]+", "1 2"));
        assert!(is_match(r"a\b", "a"));
    }

    #[test]
    fn go_only_syntax_is_rewritten() {
        assert!(is_match(r"\Qa.b\E", "a.b"));
        assert!(!is_match(r"\Qa.b\E", "axb"));
        assert!(is_match(r"\<x\>", "<x>"));
        assert!(is_match(r"a{,3}", "a{,3}"));
        assert!(is_match(r"x{", "x{"));
        assert!(is_match(r"[[]", "["));
        assert!(is_match(r"[a&&b]", "&"));
        assert!(is_match(r"\101", "A"));
        assert!(is_match(r"(?P<x>a)(?P<x>b)", "ab"));
        assert!(is_match(r"[]a]", "]"));
    }

    #[test]
    fn what_go_refuses_is_refused() {
        for pattern in [
            "a**", "a{2}{3}", "a+?+", "a{1001}", "a{2,1}", "(?x)a", "(?<n>a)", r"\C", r"\8", r"\1",
            r"\Z", "(", "[a",
        ] {
            assert!(anchored(pattern).is_err(), "{pattern} should be refused");
        }
    }

    #[test]
    fn what_go_accepts_is_accepted() {
        for pattern in [
            "a{1000}",
            "a*?",
            "(?i)abc",
            "(?s:.)",
            "(?U)a+",
            "(?i-s:a.)",
            r"\pL",
            r"\p{Greek}",
            "[[:alpha:]]",
            "[^[:digit:]]",
            r"\x41\x{263a}",
            "",
            "a|",
        ] {
            assert!(anchored(pattern).is_ok(), "{pattern} should be accepted");
        }
    }

    #[test]
    fn errors_name_the_anchored_pattern() {
        let err = anchored("(")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("error parsing regexp: "), "{err}");
        assert!(err.ends_with("`^(?:()$`"), "{err}");
    }
}
