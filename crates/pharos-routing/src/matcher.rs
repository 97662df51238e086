//! Alertmanager's label matchers: `foo="bar"`, `baz=~"a|b"`, `x!=y`, `{a="b",c!~"d"}`, parsed
//! as Alertmanager 0.25's `pkg/labels/parse.go` parses them, and matched as
//! `pkg/labels/matcher.go` matches them (regular expressions fully anchored, an absent label
//! read as the empty string).

use std::cmp::Ordering;
use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

use crate::error::{ConfigError, Result};
use crate::labels::LabelSet;
use crate::regex_compat;

/// How a matcher compares a label value. The order is Alertmanager's (`MatchEqual` first),
/// which breaks ties when matchers are sorted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MatchType {
    /// `=`: the value equals.
    Equal,
    /// `!=`: the value differs.
    NotEqual,
    /// `=~`: the value matches the anchored regular expression.
    Regexp,
    /// `!~`: the value does not match the anchored regular expression.
    NotRegexp,
}

impl MatchType {
    /// The operator as written: `=`, `!=`, `=~` or `!~`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Equal => "=",
            Self::NotEqual => "!=",
            Self::Regexp => "=~",
            Self::NotRegexp => "!~",
        }
    }
}

impl fmt::Display for MatchType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One matcher: a label name, an operator and a value (a regular expression for `=~`/`!~`).
#[derive(Clone, Debug)]
pub struct Matcher {
    match_type: MatchType,
    name: String,
    value: String,
    regex: Option<Regex>,
}

impl Matcher {
    /// A matcher; for the regular-expression types the value is compiled as
    /// `^(?:value)$` with Go's syntax.
    pub fn new(
        match_type: MatchType,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self> {
        let value = value.into();
        let regex = match match_type {
            MatchType::Regexp | MatchType::NotRegexp => {
                Some(regex_compat::compile(&format!("^(?:{value})$"))?)
            }
            MatchType::Equal | MatchType::NotEqual => None,
        };
        Ok(Self {
            match_type,
            name: name.into(),
            value,
            regex,
        })
    }

    /// The operator.
    pub fn match_type(&self) -> MatchType {
        self.match_type
    }

    /// The label name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value (the unanchored regular expression for `=~`/`!~`).
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether a label value satisfies the matcher (pass `""` for an absent label).
    pub fn matches(&self, value: &str) -> bool {
        match (self.match_type, &self.regex) {
            (MatchType::Equal, _) => value == self.value,
            (MatchType::NotEqual, _) => value != self.value,
            (MatchType::Regexp, Some(regex)) => regex.is_match(value),
            (MatchType::NotRegexp, Some(regex)) => !regex.is_match(value),
            // `new` always compiles a regex for these types.
            (MatchType::Regexp | MatchType::NotRegexp, None) => false,
        }
    }

    /// The order Alertmanager sorts matchers in: name, then value, then type.
    fn sort_order(&self, other: &Self) -> Ordering {
        self.name
            .cmp(&other.name)
            .then_with(|| self.value.cmp(&other.value))
            .then_with(|| self.match_type.cmp(&other.match_type))
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.match_type == other.match_type && self.name == other.name && self.value == other.value
    }
}

impl Eq for Matcher {}

/// `name<op>"value"`, the value escaped as OpenMetrics does (`\\`, `\n`, `\"`).
impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}\"{}\"",
            self.name,
            self.match_type,
            open_metrics_escape(&self.value)
        )
    }
}

fn open_metrics_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

/// A list of matchers that all have to hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Matchers(Vec<Matcher>);

impl Matchers {
    /// Wraps a list (in the given order).
    pub fn new(matchers: Vec<Matcher>) -> Self {
        Self(matchers)
    }

    /// Sorts as Alertmanager does before building route keys (name, value, type).
    pub fn sort(&mut self) {
        self.0.sort_by(Matcher::sort_order);
    }

    /// Whether every matcher holds for the label set (an absent label reads as `""`).
    pub fn matches(&self, labels: &LabelSet) -> bool {
        self.0.iter().all(|matcher| {
            matcher.matches(labels.get(&matcher.name).map(String::as_str).unwrap_or(""))
        })
    }

    /// The matchers.
    pub fn iter(&self) -> std::slice::Iter<'_, Matcher> {
        self.0.iter()
    }

    /// How many matchers there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none (matches everything).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a Matchers {
    type Item = &'a Matcher;
    type IntoIter = std::slice::Iter<'a, Matcher>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// `{a="b",c!~"d"}`, as Alertmanager prints matchers in route keys.
impl fmt::Display for Matchers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (index, matcher) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            write!(f, "{matcher}")?;
        }
        f.write_str("}")
    }
}

/// The matcher grammar of `pkg/labels/parse.go`: a label name (colons allowed), an operator,
/// and a value that runs to the end with surrounding whitespace dropped. Go's `\s` is
/// `[\t\n\f\r ]`.
static MATCHER_RE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"^[\t\n\x0C\r ]*([a-zA-Z_:][a-zA-Z0-9_:]*)[\t\n\x0C\r ]*(=~|=|!=|!~)[\t\n\x0C\r ]*((?s).*?)[\t\n\x0C\r ]*$",
    )
    .ok()
});

/// Parses a comma-separated list of matchers, with optional surrounding braces, as
/// Alertmanager 0.25's `labels.ParseMatchers` does. Commas inside double quotes do not
/// separate; a quote escaped with a backslash does not open or close a quoted part.
pub fn parse_matchers(input: &str) -> Result<Vec<Matcher>> {
    let text = input.strip_prefix('{').unwrap_or(input);
    let text = text.strip_suffix('}').unwrap_or(text);

    let mut inside_quotes = false;
    let mut escaped = false;
    let mut token = String::new();
    let mut tokens = Vec::new();
    for c in text.chars() {
        match c {
            ',' => {
                if !inside_quotes {
                    tokens.push(std::mem::take(&mut token));
                    continue;
                }
                // Inside quotes a comma leaves the escape state as it was (as in Go).
            }
            '"' => {
                if escaped {
                    escaped = false;
                } else {
                    inside_quotes = !inside_quotes;
                }
            }
            '\\' => escaped = !escaped,
            _ => escaped = false,
        }
        token.push(c);
    }
    let last = token.trim();
    if !last.is_empty() {
        tokens.push(last.to_string());
    }
    tokens.iter().map(|token| parse_matcher(token)).collect()
}

/// Parses one matcher (`name op value`, the value optionally double-quoted, with OpenMetrics
/// escapes `\"`, `\n`, `\\`), as Alertmanager 0.25's `labels.ParseMatcher` does.
pub fn parse_matcher(input: &str) -> Result<Matcher> {
    let bad_format = || ConfigError::Matcher {
        input: input.to_string(),
        reason: format!("bad matcher format: {input}"),
    };
    let grammar = MATCHER_RE.as_ref().ok_or_else(bad_format)?;
    let captures = grammar.captures(input).ok_or_else(bad_format)?;
    let (Some(name), Some(operator), Some(raw)) =
        (captures.get(1), captures.get(2), captures.get(3))
    else {
        return Err(bad_format());
    };
    let raw_value = raw.as_str();
    let unescaped_quote = || ConfigError::Matcher {
        input: input.to_string(),
        reason: format!("matcher value contains unescaped double quote: {raw_value}"),
    };

    let (body, mut expect_trailing_quote) = match raw_value.strip_prefix('"') {
        Some(rest) => (rest, true),
        None => (raw_value, false),
    };
    let mut value = String::with_capacity(body.len());
    let mut escaped = false;
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        let is_last = chars.peek().is_none();
        if escaped {
            escaped = false;
            match c {
                'n' => value.push('\n'),
                '"' | '\\' => value.push(c),
                // A spurious escape: the backslash is literal.
                _ => {
                    value.push('\\');
                    value.push(c);
                }
            }
            continue;
        }
        match c {
            '\\' if !is_last => escaped = true,
            // A backslash as the last character is literal.
            '\\' => value.push('\\'),
            '"' => {
                if !expect_trailing_quote || !is_last {
                    return Err(unescaped_quote());
                }
                expect_trailing_quote = false;
            }
            c => value.push(c),
        }
    }
    if expect_trailing_quote {
        return Err(unescaped_quote());
    }

    let match_type = match operator.as_str() {
        "=" => MatchType::Equal,
        "!=" => MatchType::NotEqual,
        "=~" => MatchType::Regexp,
        _ => MatchType::NotRegexp,
    };
    Matcher::new(match_type, name.as_str(), value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_one(input: &str) -> Matcher {
        let mut all = parse_matchers(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(all.len(), 1, "{input}");
        all.remove(0)
    }

    fn shown(input: &str) -> Vec<String> {
        parse_matchers(input)
            .unwrap_or_else(|e| panic!("{input}: {e}"))
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn parses_quoted_and_unquoted_values() {
        assert_eq!(shown("foo=bar"), vec![r#"foo="bar""#]);
        assert_eq!(shown(r#"foo="bar""#), vec![r#"foo="bar""#]);
        assert_eq!(shown(r#"baz=~"a|b""#), vec![r#"baz=~"a|b""#]);
        assert_eq!(shown("x!=y"), vec![r#"x!="y""#]);
        assert_eq!(shown("x!~y.*"), vec![r#"x!~"y.*""#]);
        assert_eq!(shown("foo="), vec![r#"foo="""#]);
        assert_eq!(shown("a:b=c"), vec![r#"a:b="c""#]);
    }

    #[test]
    fn parses_lists_with_braces_commas_and_whitespace() {
        assert_eq!(shown(r#"{a="b",c!~"d"}"#), vec![r#"a="b""#, r#"c!~"d""#]);
        assert_eq!(
            shown(r#"{foo = "bar", dings != "bums", }"#),
            vec![r#"foo="bar""#, r#"dings!="bums""#]
        );
        assert_eq!(shown(r#"baz="a,b""#), vec![r#"baz="a,b""#]);
        assert_eq!(shown(r#"foo="a\",b""#), vec![r#"foo="a\",b""#]);
        assert!(shown("{}").is_empty());
        assert!(shown("").is_empty());
        assert!(shown("   ").is_empty());
        assert_eq!(shown("{foo=bar"), vec![r#"foo="bar""#]);
    }

    #[test]
    fn unescapes_open_metrics_escapes() {
        assert_eq!(parse_one(r#"foo="a\"b""#).value(), "a\"b");
        assert_eq!(parse_one(r#"foo="a\nb""#).value(), "a\nb");
        assert_eq!(parse_one(r#"foo="a\\b""#).value(), "a\\b");
        // Spurious escapes and a final backslash stay literal.
        assert_eq!(parse_one(r#"foo="a\qb""#).value(), "a\\qb");
        assert_eq!(parse_one(r"foo=a\").value(), "a\\");
        assert_eq!(parse_one(r#"foo = " x " "#).value(), " x ");
        assert_eq!(parse_one("a=b c").value(), "b c");
    }

    #[test]
    fn refuses_what_alertmanager_refuses() {
        for input in [
            "foo",
            "1x=1",
            "foo-bar=x",
            r#"foo="a"b""#,
            r#"foo="ab"#,
            r#"foo=ab""#,
            r#"foo="a\""#,
            "foo=bar,,baz=x",
            "{{foo=bar}}",
            r#"a="b" c"#,
            r#"foo=~"(""#,
        ] {
            assert!(parse_matchers(input).is_err(), "{input} should be refused");
        }
        let err = parse_matchers("foo").err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("bad matcher format: foo"));
    }

    #[test]
    fn regexes_are_fully_anchored() {
        let matcher = parse_one(r#"job=~"api|web""#);
        assert!(matcher.matches("api"));
        assert!(matcher.matches("web"));
        assert!(!matcher.matches("api2"));
        assert!(!matcher.matches("xweb"));
        let negated = parse_one("job!~api.*");
        assert!(negated.matches("web"));
        assert!(!negated.matches("api-1"));
    }

    #[test]
    fn absent_labels_read_as_empty() {
        let labels: LabelSet = [("a".to_string(), "1".to_string())].into();
        let matchers = Matchers::new(parse_matchers(r#"b="", a="1""#).unwrap_or_default());
        assert!(matchers.matches(&labels));
        let matchers = Matchers::new(parse_matchers(r#"b!="""#).unwrap_or_default());
        assert!(!matchers.matches(&labels));
        let matchers = Matchers::new(parse_matchers(r#"b=~".*""#).unwrap_or_default());
        assert!(matchers.matches(&labels));
    }

    #[test]
    fn sorts_by_name_value_then_type() {
        let mut matchers =
            Matchers::new(parse_matchers(r#"{z="1", a!="2", a="2", a="1"}"#).unwrap_or_default());
        matchers.sort();
        assert_eq!(matchers.to_string(), r#"{a="1",a="2",a!="2",z="1"}"#);
    }

    #[test]
    fn display_escapes_values() {
        let matcher = Matcher::new(MatchType::Equal, "a", "x\"y\\z\n").ok();
        assert_eq!(
            matcher.map(|m| m.to_string()).as_deref(),
            Some(r#"a="x\"y\\z\n""#)
        );
    }
}
