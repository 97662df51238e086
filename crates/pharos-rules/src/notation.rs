//! promtool's series notation: the `series` and `values` of a rule unit test's `input_series`
//! (`http_requests_total{job="api"}` and `0+10x5 _ stale`), and the `labels` of its
//! `exp_samples`, read as Prometheus 2.42 reads them.
//!
//! promtool joins each input series into one line, `SERIES VALUES`, and parses the line with the
//! PromQL parser's series-description mode (`parser.ParseSeriesDesc`). This module follows that
//! lexer and grammar, and the error messages they give, for the forms a test file uses:
//!
//! | notation | values | note |
//! | --- | --- | --- |
//! | `1 2.5 -3 +4 1e3 010` | one value each | `010` is octal (8): Go's `ParseInt` with base 0 |
//! | `Inf -Inf NaN` | one value each | any case (`inf`, `NAN`) |
//! | `stale` | one staleness marker | lower case only |
//! | `_` | one omitted value | nothing is stored at that step |
//! | `_xN` | N omitted values | |
//! | `AxN` | N+1 times A | `1x3` is `1 1 1 1`; `0x10` is `0` eleven times (no hex) |
//! | `A+BxN`, `A-BxN` | N+1 values A, A+B, …, A+N·B | summed one step at a time, as Go does |
//!
//! Values are separated by spaces (or tabs). `stale+1x2` is a staleness marker followed by two
//! plain NaNs: adding to the marker's NaN makes an ordinary NaN.
//!
//! What promtool then does with the parsed lines is here too ([`load_input_series`]): a line
//! that repeats another's labels replaces it, and a label set that is empty or repeats a label
//! name fails the test, as storage refuses the sample. Errors read as promtool prints them:
//! `1:14: parse error: unexpected identifier "a" in series values, expected number or "stale"`
//! (promtool always says line 1; the column counts bytes from 1).
//!
//! Value `i` of a series is stored at `i × interval` (the test group's `interval`). promtool
//! 2.42 does not default a missing `interval` to `evaluation_interval`: it loads with a step of
//! 0s, every value lands at time 0, and the first one stays.
//!
//! An expected sample's `labels` are read by [`parse_metric`] (`parser.ParseMetric`), which
//! allows spaces and an empty text, unlike an input series.

use pharos_promql::{Labels, METRIC_NAME, stale_nan};

/// The most values one series description may expand to. Prometheus has no limit (a repetition
/// count near 2^64 makes promtool run out of memory); sixteen million steps of a minute are 32
/// years.
pub const MAX_VALUES: usize = 1 << 24;

/// One value of a series description: a number, a staleness marker, or omitted (`_`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SeriesValue {
    Value(f64),
    Stale,
    Omitted,
}

impl SeriesValue {
    /// The sample stored for this value, if any: the number, or the staleness marker NaN.
    pub fn sample(self) -> Option<f64> {
        match self {
            Self::Value(value) => Some(value),
            Self::Stale => Some(stale_nan()),
            Self::Omitted => None,
        }
    }
}

/// One parsed input series: its labels and its values, one per step of the test's `interval`
/// from time 0.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesDescription {
    pub labels: Labels,
    pub values: Vec<SeriesValue>,
}

/// What is wrong with a series, its values or a sample's labels.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NotationError {
    /// The text does not parse. `column` counts bytes from 1 in the text parsed: the line
    /// `SERIES VALUES` for [`load_input_series`] and [`parse_series_description`], and the
    /// argument itself for the other functions.
    #[error("1:{column}: parse error: {message}")]
    Syntax { column: usize, message: String },
    /// A series names a label twice (`m{a="1", a="2"}`).
    #[error("label name \"{name}\" is not unique: invalid sample")]
    DuplicateLabel { name: String },
    /// A series has no label at all (`{}`, or only empty values).
    #[error("empty labelset: invalid sample")]
    EmptyLabelSet,
    /// An expected sample's label has an empty value, which no sample can have: promtool keeps
    /// it and the expectation never matches.
    #[error("label {name:?} of an expected sample has an empty value, which no sample has")]
    EmptyLabelValue { name: String },
    /// The values expand to more than [`MAX_VALUES`].
    #[error("the values expand to more than {limit} values")]
    TooManyValues { limit: usize },
}

/// The labels of an input series: `metric{a="b"}`, `{__name__="metric", a="b"}` or `metric`.
///
/// A metric name in front replaces a `__name__` inside the braces, and there a label with an
/// empty value removes every label of its name (Prometheus' label builder). Values in the text
/// are refused: they belong in `values`.
pub fn parse_labels(series: &str) -> Result<Labels, NotationError> {
    let mut parser = Parser::new(series, Mode::Series);
    let (pairs, after_metric) = parser.metric()?;
    let rest = &series[after_metric..];
    if let Some(offset) = rest.find(|c: char| !is_space(c)) {
        let start = after_metric + offset;
        return Err(syntax(
            start,
            format!(
                "unexpected {:?} after the series' labels: values belong in `values`",
                rest.trim()
            ),
        ));
    }
    stored_labels(pairs)
}

/// The values of an input series: `1 2 3`, `0+10x5`, `10-2x3`, `1x3`, `_`, `_x3`, `stale`,
/// `-1`, `1e3`, `Inf`, `-Inf`, `NaN`, separated by spaces. See the module documentation for what
/// each expands to.
pub fn parse_values(values: &str) -> Result<Vec<SeriesValue>, NotationError> {
    let mut parser = Parser::new(values, Mode::Series);
    parser.values_after_space()
}

/// One line `SERIES VALUES` as `parser.ParseSeriesDesc` reads it, with the label checks storage
/// makes when promtool loads the series.
pub fn parse_series_description(line: &str) -> Result<SeriesDescription, NotationError> {
    let (pairs, values) = parse_line(line)?;
    Ok(SeriesDescription {
        labels: stored_labels(pairs)?,
        values,
    })
}

/// A test group's `input_series` (`series`, `values` pairs, in order) as promtool 2.42 loads
/// them: it writes `  SERIES VALUES` lines under a `load` command and reads them back, so
///
/// - each line is trimmed, and a line that starts with `#` or is empty ends the load: a
///   `values: |` block scalar (which ends in a line break) silently drops every series after
///   its own, and a line break inside `values` starts another series;
/// - a series with the same labels as an earlier one replaces it (at the earlier position);
/// - every line is parsed before any label set is checked.
pub fn load_input_series<S: AsRef<str>, V: AsRef<str>>(
    input_series: &[(S, V)],
) -> Result<Vec<SeriesDescription>, NotationError> {
    let mut text = String::new();
    for (series, values) in input_series {
        text.push_str("  ");
        text.push_str(series.as_ref());
        text.push(' ');
        text.push_str(values.as_ref());
        text.push('\n');
    }
    let mut parsed = Vec::new();
    for line in text.split('\n') {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            break;
        }
        parsed.push(parse_line(line)?);
    }
    let mut loaded: Vec<SeriesDescription> = Vec::with_capacity(parsed.len());
    for (pairs, values) in parsed {
        let labels = stored_labels(pairs)?;
        match loaded.iter_mut().find(|earlier| earlier.labels == labels) {
            Some(earlier) => earlier.values = values,
            None => loaded.push(SeriesDescription { labels, values }),
        }
    }
    Ok(loaded)
}

/// The `labels` of an expected sample (`exp_samples`), as `parser.ParseMetric` reads them:
/// `metric{a="b"}`, `{a="b"}`, `metric {a="b"}` (spaces are allowed here), or empty for a sample
/// without labels.
pub fn parse_metric(text: &str) -> Result<Labels, NotationError> {
    let mut parser = Parser::new(text, Mode::Metric);
    let (pairs, _) = parser.metric()?;
    let token = parser.next_token(LexState::Statement)?;
    if token.kind != Kind::Eof {
        return Err(parser.unexpected(token, None));
    }
    let mut names: Vec<&str> = pairs.iter().map(|(name, _)| name.as_str()).collect();
    names.sort_unstable();
    if let Some(pair) = names.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(NotationError::DuplicateLabel {
            name: pair[0].to_owned(),
        });
    }
    if let Some((name, _)) = pairs.iter().find(|(_, value)| value.is_empty()) {
        return Err(NotationError::EmptyLabelValue { name: name.clone() });
    }
    Ok(Labels::from_pairs(pairs))
}

/// Label pairs as the grammar builds them, before storage's checks: in order, names may repeat
/// and values may be empty.
type LabelPairs = Vec<(String, String)>;

fn parse_line(line: &str) -> Result<(LabelPairs, Vec<SeriesValue>), NotationError> {
    let mut parser = Parser::new(line, Mode::Series);
    let (pairs, _) = parser.metric()?;
    let values = parser.values_after_metric()?;
    Ok((pairs, values))
}

/// The labels storage keeps for a parsed series: without empty values, refused when empty or
/// when a name repeats.
fn stored_labels(pairs: LabelPairs) -> Result<Labels, NotationError> {
    let mut pairs: LabelPairs = pairs
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .collect();
    if pairs.is_empty() {
        return Err(NotationError::EmptyLabelSet);
    }
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(pair) = pairs.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        return Err(NotationError::DuplicateLabel {
            name: pair[0].0.clone(),
        });
    }
    Ok(Labels::from_pairs(pairs))
}

fn syntax(offset: usize, message: String) -> NotationError {
    NotationError::Syntax {
        column: offset + 1,
        message,
    }
}

/// Which of the parser's entry points reads the text: a series description (promtool's input
/// series) or a metric (an expected sample's labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Series,
    Metric,
}

/// The lexer's states that matter here (Prometheus' `lexStatements`, `lexInsideBraces` and
/// `lexValueSequence`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LexState {
    Statement,
    InsideBraces,
    Values,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Eof,
    Space,
    Identifier,
    MetricIdentifier,
    Keyword(KeywordClass),
    Number,
    Duration,
    String,
    LeftBrace,
    RightBrace,
    Comma,
    Eql,
    Add,
    Sub,
    /// Any other operator (`*`, `==`, `!=`, `=~` …), shown as `<op:…>`.
    Operator,
    /// `@`, which Prometheus 2.42 describes oddly (`"<Item 57385>" <op:@>`).
    At,
    Times,
    Blank,
    /// Punctuation shown quoted: `(`, `[`.
    Punctuation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeywordClass {
    /// `and`, `or`, `unless`, `atan2`: shown as `<op:and>`.
    Operator,
    /// `sum`, `avg` …: shown as `<aggr:sum>`.
    Aggregator,
    /// `by`, `offset`, `bool` …: shown as `<by>`.
    Keyword,
    /// `start`, `end` (the `@` modifier's): shown quoted.
    Preprocessor,
}

/// The keywords of Prometheus 2.42's lexer, with whether the grammar takes each as a metric
/// name (`metric_identifier`).
const KEYWORDS: &[(&str, KeywordClass, bool)] = &[
    ("and", KeywordClass::Operator, true),
    ("or", KeywordClass::Operator, true),
    ("unless", KeywordClass::Operator, true),
    ("atan2", KeywordClass::Operator, false),
    ("sum", KeywordClass::Aggregator, true),
    ("avg", KeywordClass::Aggregator, true),
    ("count", KeywordClass::Aggregator, true),
    ("min", KeywordClass::Aggregator, true),
    ("max", KeywordClass::Aggregator, true),
    ("group", KeywordClass::Aggregator, true),
    ("stddev", KeywordClass::Aggregator, true),
    ("stdvar", KeywordClass::Aggregator, true),
    ("topk", KeywordClass::Aggregator, true),
    ("bottomk", KeywordClass::Aggregator, true),
    ("count_values", KeywordClass::Aggregator, true),
    ("quantile", KeywordClass::Aggregator, true),
    ("offset", KeywordClass::Keyword, true),
    ("by", KeywordClass::Keyword, true),
    ("without", KeywordClass::Keyword, true),
    ("on", KeywordClass::Keyword, false),
    ("ignoring", KeywordClass::Keyword, false),
    ("group_left", KeywordClass::Keyword, false),
    ("group_right", KeywordClass::Keyword, false),
    ("bool", KeywordClass::Keyword, false),
    ("start", KeywordClass::Preprocessor, true),
    ("end", KeywordClass::Preprocessor, true),
];

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: Kind,
    start: usize,
    end: usize,
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    mode: Mode,
    /// Where the last word (identifier or keyword) ended.
    last_word_end: Option<usize>,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, mode: Mode) -> Self {
        Self {
            text,
            pos: 0,
            mode,
            last_word_end: None,
        }
    }

    fn peek_char(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn char_at(&self, offset: usize) -> Option<char> {
        self.text.get(offset..).and_then(|rest| rest.chars().next())
    }

    fn token_text(&self, token: Token) -> &'a str {
        &self.text[token.start..token.end]
    }

    /// Prometheus' description of a token in its error messages (`Item.desc`).
    fn describe(&self, token: Token) -> String {
        let text = self.token_text(token);
        match token.kind {
            Kind::Eof => "end of input".to_owned(),
            Kind::Identifier => format!("identifier {}", go_quote(text)),
            Kind::MetricIdentifier => format!("metric identifier {}", go_quote(text)),
            Kind::Number => format!("number {}", go_quote_short(text)),
            Kind::Duration => format!("duration {}", go_quote_short(text)),
            Kind::String => format!("string {}", go_quote_short(text)),
            Kind::Keyword(KeywordClass::Operator) | Kind::Add | Kind::Sub | Kind::Operator => {
                format!("<op:{text}>")
            }
            Kind::Keyword(KeywordClass::Aggregator) => format!("<aggr:{text}>"),
            Kind::Keyword(KeywordClass::Keyword) => format!("<{text}>"),
            Kind::At => "\"<Item 57385>\" <op:@>".to_owned(),
            Kind::Keyword(KeywordClass::Preprocessor)
            | Kind::Space
            | Kind::LeftBrace
            | Kind::RightBrace
            | Kind::Comma
            | Kind::Eql
            | Kind::Times
            | Kind::Blank
            | Kind::Punctuation => go_quote_short(text),
        }
    }

    /// The parser's complaint about `token`: `unexpected X in CONTEXT, expected Y`, or only
    /// `unexpected X` where Prometheus' grammar falls back to its catch-all error rule.
    fn unexpected(&self, token: Token, context: Option<(&str, &str)>) -> NotationError {
        let mut message = format!("unexpected {}", self.describe(token));
        if let Some((context, expected)) = context {
            message.push_str(" in ");
            message.push_str(context);
            if !expected.is_empty() {
                message.push_str(", expected ");
                message.push_str(expected);
            }
        }
        syntax(token.start, message)
    }

    fn in_series_values(&self, token: Token) -> NotationError {
        self.unexpected(token, Some(("series values", "")))
    }

    /// The metric part: a name, a label set, or both; the label pairs as the grammar builds
    /// them (with a name in front, Prometheus' label builder: the name replaces `__name__` and
    /// an empty value removes every label of its name). Returns the pairs and the offset after
    /// the metric.
    fn metric(&mut self) -> Result<(LabelPairs, usize), NotationError> {
        let token = self.next_token(LexState::Statement)?;
        match token.kind {
            Kind::LeftBrace => {
                let pairs = self.label_set()?;
                Ok((pairs, self.pos))
            }
            Kind::Eof => {
                self.pos = token.start;
                Ok((Vec::new(), token.start))
            }
            kind if is_metric_name(kind, self.token_text(token)) => {
                let name = self.token_text(token).to_owned();
                let pairs = match self.mode {
                    // The `{` must follow the name at once: a space starts the values.
                    Mode::Series if self.peek_char() == Some('{') => {
                        self.next_token(LexState::Statement)?;
                        self.label_set()?
                    }
                    Mode::Series => Vec::new(),
                    Mode::Metric => {
                        let before = self.pos;
                        if self.next_token(LexState::Statement)?.kind == Kind::LeftBrace {
                            self.label_set()?
                        } else {
                            self.pos = before;
                            Vec::new()
                        }
                    }
                };
                let removed: Vec<String> = pairs
                    .iter()
                    .filter(|(_, value)| value.is_empty())
                    .map(|(name, _)| name.clone())
                    .collect();
                let mut built: LabelPairs = pairs
                    .into_iter()
                    .filter(|(label, _)| label != METRIC_NAME && !removed.contains(label))
                    .collect();
                built.push((METRIC_NAME.to_owned(), name));
                Ok((built, self.pos))
            }
            _ => Err(match self.mode {
                Mode::Series => self.in_series_values(token),
                Mode::Metric => self.unexpected(token, None),
            }),
        }
    }

    /// The label pairs of `{…}`, the `{` read.
    fn label_set(&mut self) -> Result<LabelPairs, NotationError> {
        const CONTEXT: &str = "label set";
        let mut pairs = Vec::new();
        loop {
            let token = self.next_token(LexState::InsideBraces)?;
            match token.kind {
                Kind::RightBrace => return Ok(pairs),
                Kind::Identifier => {}
                _ => {
                    return Err(self.unexpected(token, Some((CONTEXT, "identifier or \"}\""))));
                }
            }
            let name = self.token_text(token).to_owned();
            let equals = self.next_token(LexState::InsideBraces)?;
            if equals.kind != Kind::Eql {
                return Err(self.unexpected(equals, Some((CONTEXT, "\"=\""))));
            }
            let value = self.next_token(LexState::InsideBraces)?;
            if value.kind != Kind::String {
                return Err(self.unexpected(value, Some((CONTEXT, "string"))));
            }
            pairs.push((name, self.unquote(value)?));
            let separator = self.next_token(LexState::InsideBraces)?;
            match separator.kind {
                Kind::RightBrace => return Ok(pairs),
                Kind::Comma => {}
                _ => {
                    return Err(self.unexpected(separator, Some((CONTEXT, "\",\" or \"}\""))));
                }
            }
        }
    }

    /// The values after the metric: nothing, or a space and then values.
    fn values_after_metric(&mut self) -> Result<Vec<SeriesValue>, NotationError> {
        let token = self.next_token(LexState::Values)?;
        match token.kind {
            Kind::Eof => Ok(Vec::new()),
            Kind::Space => self.values_after_space(),
            _ => Err(self.in_series_values(token)),
        }
    }

    /// Values, space-separated, a space before them already read (or implied, for a `values`
    /// text on its own).
    fn values_after_space(&mut self) -> Result<Vec<SeriesValue>, NotationError> {
        let mut values = Vec::new();
        let mut token = self.next_token(LexState::Values)?;
        loop {
            match token.kind {
                Kind::Eof => return Ok(values),
                // A leading run of spaces in `values` on its own.
                Kind::Space => {}
                _ => {
                    let next = self.item(token, &mut values)?;
                    match next.kind {
                        Kind::Eof => return Ok(values),
                        Kind::Space => {}
                        _ => return Err(self.unexpected(next, None)),
                    }
                }
            }
            token = self.next_token(LexState::Values)?;
        }
    }

    /// One item (`_`, `_xN`, `V`, `VxN`, `V+DxN`) starting with `first`, its values appended to
    /// `values`; returns the token after it.
    fn item(
        &mut self,
        first: Token,
        values: &mut Vec<SeriesValue>,
    ) -> Result<Token, NotationError> {
        if first.kind == Kind::Blank {
            let next = self.next_token(LexState::Values)?;
            if next.kind != Kind::Times {
                push_values(values, 1, |_| SeriesValue::Omitted)?;
                return Ok(next);
            }
            let count = self.repetitions()?;
            push_values(values, count, |_| SeriesValue::Omitted)?;
            return self.next_token(LexState::Values);
        }
        let base = self.series_value(first)?;
        let next = self.next_token(LexState::Values)?;
        match next.kind {
            Kind::Times => {
                let count = self.repetitions()?;
                push_values(values, count.saturating_add(1), |_| base)?;
                self.next_token(LexState::Values)
            }
            Kind::Add | Kind::Sub => {
                let magnitude = self.next_token(LexState::Values)?;
                if magnitude.kind != Kind::Number {
                    return Err(self.in_series_values(magnitude));
                }
                let delta = self.number(magnitude)?;
                let delta = if next.kind == Kind::Sub {
                    -delta
                } else {
                    delta
                };
                let times = self.next_token(LexState::Values)?;
                if times.kind != Kind::Times {
                    return Err(self.in_series_values(times));
                }
                let count = self.repetitions()?;
                let mut current = base;
                push_values(values, count.saturating_add(1), |_| {
                    let value = current;
                    current = step(current, delta);
                    value
                })?;
                self.next_token(LexState::Values)
            }
            _ => {
                push_values(values, 1, |_| base)?;
                Ok(next)
            }
        }
    }

    /// `series_value`: a number, a signed number or `stale`.
    fn series_value(&mut self, token: Token) -> Result<SeriesValue, NotationError> {
        match token.kind {
            Kind::Number => Ok(SeriesValue::Value(self.number(token)?)),
            Kind::Add | Kind::Sub => {
                let magnitude = self.next_token(LexState::Values)?;
                if magnitude.kind != Kind::Number {
                    return Err(self.in_series_values(magnitude));
                }
                let value = self.number(magnitude)?;
                Ok(SeriesValue::Value(if token.kind == Kind::Sub {
                    -value
                } else {
                    value
                }))
            }
            Kind::Identifier if self.token_text(token) == "stale" => Ok(SeriesValue::Stale),
            Kind::Identifier => {
                Err(self.unexpected(token, Some(("series values", "number or \"stale\""))))
            }
            _ => Err(self.unexpected(token, None)),
        }
    }

    /// The count after `x`: a decimal unsigned integer.
    fn repetitions(&mut self) -> Result<usize, NotationError> {
        let token = self.next_token(LexState::Values)?;
        if token.kind != Kind::Number {
            return Err(self.in_series_values(token));
        }
        let text = self.token_text(token);
        let count = parse_uint(text).map_err(|reason| {
            syntax(
                token.start,
                format!(
                    "invalid repetition in series values: strconv.ParseUint: parsing {}: {reason}",
                    go_quote(text)
                ),
            )
        })?;
        usize::try_from(count)
            .ok()
            .filter(|&count| count < MAX_VALUES)
            .ok_or(NotationError::TooManyValues { limit: MAX_VALUES })
    }

    /// A number token's value, as Prometheus' `parser.number` reads it: `ParseInt` with base 0
    /// (so `010` is octal), else `ParseFloat`.
    fn number(&self, token: Token) -> Result<f64, NotationError> {
        let text = self.token_text(token);
        parse_go_number(text).map_err(|reason| {
            syntax(
                token.start,
                format!(
                    "error parsing number: strconv.ParseFloat: parsing {}: {reason}",
                    go_quote(text)
                ),
            )
        })
    }

    /// The value of a string token, escapes resolved (`strutil.Unquote`).
    fn unquote(&self, token: Token) -> Result<String, NotationError> {
        let text = self.token_text(token);
        let quote = text.chars().next().unwrap_or('"');
        let inner = &text[1..text.len() - 1];
        if quote == '`' {
            return Ok(inner.replace('\r', ""));
        }
        let mut bytes: Vec<u8> = Vec::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                let mut buffer = [0; 4];
                bytes.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
                continue;
            }
            let Some(escape) = chars.next() else { break };
            let simple = match escape {
                'a' => Some(0x07),
                'b' => Some(0x08),
                'f' => Some(0x0c),
                'n' => Some(b'\n'),
                'r' => Some(b'\r'),
                't' => Some(b'\t'),
                'v' => Some(0x0b),
                '\\' => Some(b'\\'),
                '\'' => Some(b'\''),
                '"' => Some(b'"'),
                _ => None,
            };
            if let Some(byte) = simple {
                bytes.push(byte);
                continue;
            }
            let (digits, radix) = match escape {
                'x' => (2, 16),
                'u' => (4, 16),
                'U' => (8, 16),
                _ => (2, 8),
            };
            let mut code = if radix == 8 {
                escape.to_digit(8).unwrap_or(0)
            } else {
                0
            };
            for _ in 0..digits {
                let digit = chars.next().and_then(|c| c.to_digit(radix)).unwrap_or(0);
                code = code * radix + digit;
            }
            if escape == 'u' || escape == 'U' {
                let c = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
                let mut buffer = [0; 4];
                bytes.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
            } else {
                bytes.push(u8::try_from(code).unwrap_or(u8::MAX));
            }
        }
        String::from_utf8(bytes).map_err(|_| {
            syntax(
                token.start,
                format!("label value {} is not valid UTF-8", go_quote(text)),
            )
        })
    }

    /// The next token in lexer state `state`.
    fn next_token(&mut self, state: LexState) -> Result<Token, NotationError> {
        match state {
            LexState::Statement => self.lex_statement(),
            LexState::InsideBraces => self.lex_inside_braces(),
            LexState::Values => self.lex_value(),
        }
    }

    fn token(&mut self, kind: Kind, start: usize, end: usize) -> Token {
        self.pos = end;
        Token { kind, start, end }
    }

    fn skip_spaces_and_comments(&mut self) {
        loop {
            let rest = &self.text[self.pos..];
            let trimmed = rest.trim_start_matches(is_space);
            self.pos += rest.len() - trimmed.len();
            if trimmed.starts_with('#') {
                let comment = trimmed.find(['\r', '\n']).unwrap_or(trimmed.len());
                self.pos += comment;
            } else {
                return;
            }
        }
    }

    /// `lexStatements`: outside braces and values (the start of a series; all of a metric).
    fn lex_statement(&mut self) -> Result<Token, NotationError> {
        self.skip_spaces_and_comments();
        let start = self.pos;
        let Some(c) = self.peek_char() else {
            return Ok(self.token(Kind::Eof, start, start));
        };
        let next = self.char_at(start + c.len_utf8());
        let one = start + c.len_utf8();
        match c {
            ',' => Ok(self.token(Kind::Comma, start, one)),
            '+' => Ok(self.token(Kind::Add, start, one)),
            '-' => Ok(self.token(Kind::Sub, start, one)),
            '*' | '/' | '%' | '^' => Ok(self.token(Kind::Operator, start, one)),
            '@' => Ok(self.token(Kind::At, start, one)),
            '=' => match next {
                Some('=') => Ok(self.token(Kind::Operator, start, one + 1)),
                Some('~') => Err(syntax(
                    start,
                    "unexpected character after '=': '~'".to_owned(),
                )),
                _ => Ok(self.token(Kind::Eql, start, one)),
            },
            '!' => match next {
                Some('=') => Ok(self.token(Kind::Operator, start, one + 1)),
                other => Err(syntax(
                    start,
                    format!(
                        "unexpected character after '!': {}",
                        go_quote_char(other.unwrap_or(char::REPLACEMENT_CHARACTER))
                    ),
                )),
            },
            '<' | '>' => {
                let end = if next == Some('=') { one + 1 } else { one };
                Ok(self.token(Kind::Operator, start, end))
            }
            '(' | '[' => Ok(self.token(Kind::Punctuation, start, one)),
            ')' => Err(syntax(one, "unexpected right parenthesis ')'".to_owned())),
            ']' => Err(syntax(one, "unexpected right bracket ']'".to_owned())),
            '{' => Ok(self.token(Kind::LeftBrace, start, one)),
            '"' | '\'' | '`' => self.lex_string(c),
            c if c.is_ascii_digit() || (c == '.' && next.is_some_and(|n| n.is_ascii_digit())) => {
                self.lex_number_or_duration()
            }
            c if is_alpha(c) || c == ':' => Ok(self.lex_word()),
            other => Err(syntax(
                start,
                format!("unexpected character: {}", go_quote_char(other)),
            )),
        }
    }

    /// `lexInsideBraces`.
    fn lex_inside_braces(&mut self) -> Result<Token, NotationError> {
        self.skip_spaces_and_comments();
        let start = self.pos;
        let Some(c) = self.peek_char() else {
            return Err(syntax(
                start,
                "unexpected end of input inside braces".to_owned(),
            ));
        };
        let one = start + c.len_utf8();
        let next = self.char_at(one);
        match c {
            c if is_alpha(c) => {
                let end = self.text[start..]
                    .find(|c: char| !is_alphanumeric(c))
                    .map_or(self.text.len(), |length| start + length);
                Ok(self.token(Kind::Identifier, start, end))
            }
            ',' => Ok(self.token(Kind::Comma, start, one)),
            '"' | '\'' | '`' => self.lex_string(c),
            '=' if next == Some('~') => Ok(self.token(Kind::Operator, start, one + 1)),
            '=' => Ok(self.token(Kind::Eql, start, one)),
            '!' => match next {
                Some('~' | '=') => Ok(self.token(Kind::Operator, start, one + 1)),
                other => Err(syntax(
                    start,
                    format!(
                        "unexpected character after '!' inside braces: {}",
                        go_quote_char(other.unwrap_or(char::REPLACEMENT_CHARACTER))
                    ),
                )),
            },
            '{' => Err(syntax(start, "unexpected left brace '{'".to_owned())),
            '}' => Ok(self.token(Kind::RightBrace, start, one)),
            other => Err(syntax(
                start,
                format!(
                    "unexpected character inside braces: {}",
                    go_quote_char(other)
                ),
            )),
        }
    }

    /// `lexValueSequence`.
    fn lex_value(&mut self) -> Result<Token, NotationError> {
        let start = self.pos;
        let Some(c) = self.peek_char() else {
            return Ok(self.token(Kind::Eof, start, start));
        };
        let one = start + c.len_utf8();
        let next = self.char_at(one);
        match c {
            c if is_space(c) => {
                let rest = &self.text[one..];
                self.pos = one + rest.len() - rest.trim_start_matches(is_space).len();
                Ok(Token {
                    kind: Kind::Space,
                    start,
                    end: one,
                })
            }
            '+' => Ok(self.token(Kind::Add, start, one)),
            '-' => Ok(self.token(Kind::Sub, start, one)),
            'x' => Ok(self.token(Kind::Times, start, one)),
            '_' => Ok(self.token(Kind::Blank, start, one)),
            c if c.is_ascii_digit() || (c == '.' && next.is_some_and(|n| n.is_ascii_digit())) => {
                let (end, complete) = self.scan_number(true);
                if complete {
                    Ok(self.token(Kind::Number, start, end))
                } else {
                    Err(syntax(
                        start,
                        format!("bad number syntax: {}", go_quote(&self.text[start..end])),
                    ))
                }
            }
            // After a word, Prometheus lexes a `{` as a statement would: as a token.
            '{' if self.last_word_end == Some(start) => Ok(self.token(Kind::LeftBrace, start, one)),
            c if is_alpha(c) => Ok(self.lex_word()),
            other => Err(syntax(
                start,
                format!(
                    "unexpected character in series sequence: {}",
                    go_quote_char(other)
                ),
            )),
        }
    }

    /// `lexKeywordOrIdentifier`: a word of letters, digits, `_` and `:`.
    fn lex_word(&mut self) -> Token {
        let start = self.pos;
        let end = self.text[start..]
            .find(|c: char| !(is_alphanumeric(c) || c == ':'))
            .map_or(self.text.len(), |length| start + length);
        let word = &self.text[start..end];
        let lower = word.to_ascii_lowercase();
        let kind = if lower == "inf" || lower == "nan" {
            Kind::Number
        } else if let Some((_, class, _)) = KEYWORDS.iter().find(|(key, _, _)| *key == lower) {
            Kind::Keyword(*class)
        } else if word.contains(':') {
            Kind::MetricIdentifier
        } else {
            Kind::Identifier
        };
        self.last_word_end = Some(end);
        self.token(kind, start, end)
    }

    /// `scanNumber`: the end of a number starting here, and whether it is one (what follows is
    /// not a letter or digit, except `x` in a series' values). Hexadecimal is not read in
    /// series descriptions.
    fn scan_number(&self, series: bool) -> (usize, bool) {
        let bytes = self.text.as_bytes();
        let mut end = self.pos;
        let mut hex = false;
        if !series
            && bytes.get(end) == Some(&b'0')
            && matches!(bytes.get(end + 1), Some(b'x' | b'X'))
        {
            hex = true;
            end += 2;
        }
        let is_digit = |b: u8| {
            if hex {
                b.is_ascii_hexdigit()
            } else {
                b.is_ascii_digit()
            }
        };
        while bytes.get(end).is_some_and(|&b| is_digit(b)) {
            end += 1;
        }
        if bytes.get(end) == Some(&b'.') {
            end += 1;
            while bytes.get(end).is_some_and(|&b| is_digit(b)) {
                end += 1;
            }
        }
        if matches!(bytes.get(end), Some(b'e' | b'E')) {
            end += 1;
            if matches!(bytes.get(end), Some(b'+' | b'-')) {
                end += 1;
            }
            while bytes.get(end).is_some_and(u8::is_ascii_digit) {
                end += 1;
            }
        }
        let complete = match self.char_at(end) {
            Some('x') if series => true,
            Some(c) => !is_alphanumeric(c),
            None => true,
        };
        (end, complete)
    }

    /// `lexNumberOrDuration` (outside the values).
    fn lex_number_or_duration(&mut self) -> Result<Token, NotationError> {
        let start = self.pos;
        let (end, complete) = self.scan_number(false);
        if complete {
            return Ok(self.token(Kind::Number, start, end));
        }
        let bytes = self.text.as_bytes();
        let mut at = end;
        let unit = |at: &mut usize, units: &[u8]| {
            if bytes.get(*at).is_some_and(|b| units.contains(b)) {
                *at += 1;
                if bytes.get(*at) == Some(&b's') {
                    *at += 1;
                }
                true
            } else {
                false
            }
        };
        let mut duration = unit(&mut at, b"smhdwy");
        while duration && bytes.get(at).is_some_and(u8::is_ascii_digit) {
            while bytes.get(at).is_some_and(u8::is_ascii_digit) {
                at += 1;
            }
            duration = unit(&mut at, b"smhdw");
        }
        if duration && !self.char_at(at).is_some_and(is_alphanumeric) {
            return Ok(self.token(Kind::Duration, start, at));
        }
        // Go's lexer has read one more character when it gives up.
        let end = self.char_at(at).map_or(at, |c| at + c.len_utf8());
        Err(syntax(
            start,
            format!(
                "bad number or duration syntax: {}",
                go_quote(&self.text[start..end])
            ),
        ))
    }

    /// `lexString` and `lexRawString`, with `lexEscape`'s checks; the token includes the quotes.
    fn lex_string(&mut self, quote: char) -> Result<Token, NotationError> {
        let start = self.pos;
        let mut chars = self.text[start + 1..].char_indices();
        let at = |offset: usize| start + 1 + offset;
        while let Some((offset, c)) = chars.next() {
            if c == quote {
                return Ok(self.token(Kind::String, start, at(offset) + 1));
            }
            if quote == '`' {
                continue;
            }
            match c {
                '\n' => break,
                '\\' => self.check_escape(start, quote, &mut chars)?,
                _ => {}
            }
        }
        Err(syntax(
            start,
            if quote == '`' {
                "unterminated raw string"
            } else {
                "unterminated quoted string"
            }
            .to_owned(),
        ))
    }

    /// `lexEscape`: the escape after a `\` in a string starting at `start`.
    fn check_escape(
        &self,
        start: usize,
        quote: char,
        chars: &mut std::str::CharIndices<'_>,
    ) -> Result<(), NotationError> {
        let fail = |message: String| Err(syntax(start, message));
        let Some((_, escape)) = chars.next() else {
            return fail("escape sequence not terminated".to_owned());
        };
        let (mut remaining, radix, max, mut c) = match escape {
            'a' | 'b' | 'f' | 'n' | 'r' | 't' | 'v' | '\\' => return Ok(()),
            c if c == quote => return Ok(()),
            '0'..='7' => (3, 8, 255, Some(escape)),
            'x' => (2, 16, 255, chars.next().map(|(_, c)| c)),
            'u' => (4, 16, 0x10_ffff, chars.next().map(|(_, c)| c)),
            'U' => (8, 16, 0x10_ffff, chars.next().map(|(_, c)| c)),
            other => return fail(format!("unknown escape sequence {}", go_unicode(other))),
        };
        let mut code: u32 = 0;
        while remaining > 0 {
            let Some(current) = c else {
                return fail("escape sequence not terminated".to_owned());
            };
            let Some(digit) = current.to_digit(radix) else {
                return fail(format!(
                    "illegal character {} in escape sequence",
                    go_unicode(current)
                ));
            };
            code = code.saturating_mul(radix).saturating_add(digit);
            remaining -= 1;
            if remaining > 0 {
                c = chars.next().map(|(_, c)| c);
            }
        }
        if code > max || (0xd800..0xe000).contains(&code) {
            return fail("escape sequence is an invalid Unicode code point".to_owned());
        }
        Ok(())
    }
}

/// The next value of a ramp `A+DxN`: Go adds the step each time, and adding to the staleness
/// marker gives an ordinary NaN.
fn step(current: SeriesValue, delta: f64) -> SeriesValue {
    match current {
        SeriesValue::Value(value) => SeriesValue::Value(value + delta),
        SeriesValue::Stale => SeriesValue::Value(f64::NAN),
        SeriesValue::Omitted => SeriesValue::Omitted,
    }
}

fn push_values(
    values: &mut Vec<SeriesValue>,
    count: usize,
    mut next: impl FnMut(usize) -> SeriesValue,
) -> Result<(), NotationError> {
    if values.len().saturating_add(count) > MAX_VALUES {
        return Err(NotationError::TooManyValues { limit: MAX_VALUES });
    }
    values.extend((0..count).map(&mut next));
    Ok(())
}

fn is_metric_name(kind: Kind, text: &str) -> bool {
    match kind {
        Kind::Identifier | Kind::MetricIdentifier => true,
        Kind::Keyword(_) => {
            let lower = text.to_ascii_lowercase();
            KEYWORDS
                .iter()
                .any(|(key, _, metric)| *metric && *key == lower)
        }
        _ => false,
    }
}

/// Go's `strconv.ParseUint(text, 10, 64)`, its error reason on failure.
fn parse_uint(text: &str) -> Result<u64, &'static str> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("invalid syntax");
    }
    text.parse::<u64>().map_err(|_| "value out of range")
}

/// Prometheus' `parser.number`: Go's `strconv.ParseInt(text, 0, 64)` (a leading `0` makes it
/// octal), else `strconv.ParseFloat(text, 64)`; the `ParseFloat` error reason on failure. The
/// lexer only hands over decimal digits with an optional fraction and exponent, `inf` and `nan`.
fn parse_go_number(text: &str) -> Result<f64, &'static str> {
    if text.bytes().all(|b| b.is_ascii_digit()) && !text.is_empty() {
        let integer = if text.len() > 1 && text.starts_with('0') {
            i64::from_str_radix(&text[1..], 8).ok()
        } else {
            text.parse::<i64>().ok()
        };
        if let Some(integer) = integer {
            // Go's float64(int64) conversion, rounding to nearest as `as` does.
            return Ok(integer as f64);
        }
    }
    match text.to_ascii_lowercase().as_str() {
        "inf" => return Ok(f64::INFINITY),
        "nan" => return Ok(f64::NAN),
        _ => {}
    }
    let well_formed = {
        let digits = text.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
        let mantissa = &text[..text.len() - digits.len()];
        let exponent_ok = match digits.strip_prefix(['e', 'E']) {
            None => digits.is_empty(),
            Some(exponent) => {
                let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
                !exponent.is_empty() && exponent.bytes().all(|b| b.is_ascii_digit())
            }
        };
        mantissa.bytes().filter(|&b| b == b'.').count() <= 1
            && mantissa.bytes().any(|b| b.is_ascii_digit())
            && exponent_ok
    };
    if !well_formed {
        return Err("invalid syntax");
    }
    match text.parse::<f64>() {
        Ok(value) if value.is_infinite() => Err("value out of range"),
        Ok(value) => Ok(value),
        Err(_) => Err("invalid syntax"),
    }
}

/// Prometheus' lexer's spaces (`isSpace`).
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

fn is_alpha(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic()
}

fn is_alphanumeric(c: char) -> bool {
    is_alpha(c) || c.is_ascii_digit()
}

/// Go's `%q` of a string.
fn go_quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            _ => push_go_escaped(&mut quoted, c),
        }
    }
    quoted.push('"');
    quoted
}

/// Go's `%.10q` followed by `...` for texts longer than 10 bytes, as `Item.String` shows them.
fn go_quote_short(text: &str) -> String {
    if text.len() > 10 {
        let head: String = text.chars().take(10).collect();
        format!("{}...", go_quote(&head))
    } else {
        go_quote(text)
    }
}

/// Go's `%q` of a rune.
fn go_quote_char(c: char) -> String {
    let mut quoted = String::from("'");
    match c {
        '\'' => quoted.push_str("\\'"),
        '\\' => quoted.push_str("\\\\"),
        _ => push_go_escaped(&mut quoted, c),
    }
    quoted.push('\'');
    quoted
}

fn push_go_escaped(out: &mut String, c: char) {
    match c {
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if c.is_control() => {
            if (c as u32) <= 0xffff {
                out.push_str(&format!("\\u{:04x}", c as u32));
            } else {
                out.push_str(&format!("\\U{:08x}", c as u32));
            }
        }
        c => out.push(c),
    }
}

/// Go's `%#U` of a rune: `U+0071 'q'`.
fn go_unicode(c: char) -> String {
    if c.is_control() {
        format!("U+{:04X}", c as u32)
    } else {
        format!("U+{:04X} '{c}'", c as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    fn values(text: &str) -> Vec<SeriesValue> {
        match parse_values(text) {
            Ok(values) => values,
            Err(error) => panic!("{text:?}: {error}"),
        }
    }

    fn numbers(text: &str) -> Vec<f64> {
        values(text)
            .into_iter()
            .map(|value| match value {
                SeriesValue::Value(value) => value,
                other => panic!("{text:?}: {other:?} is not a number"),
            })
            .collect()
    }

    /// What promtool prints when it loads one input series `series` with `values`.
    fn load_error(series: &str, values: &str) -> String {
        match load_input_series(&[(series, values)]) {
            Ok(loaded) => panic!("{series:?} {values:?} loaded as {loaded:?}"),
            Err(error) => error.to_string(),
        }
    }

    const O: SeriesValue = SeriesValue::Omitted;
    const S: SeriesValue = SeriesValue::Stale;

    fn v(value: f64) -> SeriesValue {
        SeriesValue::Value(value)
    }

    #[test]
    fn plain_values() {
        assert_eq!(numbers("1 2 3"), [1.0, 2.0, 3.0]);
        assert_eq!(numbers("1  2\t3 "), [1.0, 2.0, 3.0]);
        assert_eq!(numbers("  1"), [1.0]);
        assert_eq!(
            numbers("-1 +4 1e3 1e-2 2E+1 -1.5e1 .5 5."),
            [-1.0, 4.0, 1000.0, 0.01, 20.0, -15.0, 0.5, 5.0]
        );
        assert_eq!(values(""), []);
        assert_eq!(numbers("1e-400"), [0.0]);
    }

    #[test]
    fn leading_zero_is_octal_as_in_go() {
        assert_eq!(
            numbers("010 09 00 0755 010.5"),
            [8.0, 9.0, 0.0, 493.0, 10.5]
        );
        // The repetition count is decimal.
        assert_eq!(numbers("010x010"), [8.0; 11]);
    }

    #[test]
    fn infinities_and_nan_in_any_case() {
        let parsed = numbers("Inf -Inf +Inf inf INF NaN nan -NaN");
        assert_eq!(
            parsed[..5],
            [
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::INFINITY,
                f64::INFINITY,
                f64::INFINITY
            ]
        );
        assert!(parsed[5..].iter().all(|value| value.is_nan()));
    }

    #[test]
    fn repetition_gives_count_plus_one_values() {
        assert_eq!(numbers("1x3"), [1.0; 4]);
        assert_eq!(numbers("1x0"), [1.0]);
        assert_eq!(numbers("-2x1"), [-2.0, -2.0]);
        // No hexadecimal in series descriptions: `0x10` is 0 repeated.
        assert_eq!(numbers("0x10"), [0.0; 11]);
    }

    #[test]
    fn ramps_give_count_plus_one_values() {
        assert_eq!(numbers("0+10x3"), [0.0, 10.0, 20.0, 30.0]);
        assert_eq!(numbers("10-2x3"), [10.0, 8.0, 6.0, 4.0]);
        assert_eq!(numbers("-1-1x2"), [-1.0, -2.0, -3.0]);
        assert_eq!(numbers("5+0x0"), [5.0]);
        assert_eq!(numbers("1 +2x3"), [1.0, 2.0, 2.0, 2.0, 2.0]);
        // The step is added each time, rounding each time, as in Go.
        assert_eq!(numbers("0.1+0.1x2"), [0.1, 0.2, 0.1 + 0.1 + 0.1]);
    }

    #[test]
    fn omitted_values() {
        assert_eq!(values("_"), [O]);
        assert_eq!(values("_x3 1"), [O, O, O, v(1.0)]);
        assert_eq!(values("_ 1 _ 2"), [O, v(1.0), O, v(2.0)]);
        assert_eq!(values("_x0 1"), [v(1.0)]);
    }

    #[test]
    fn staleness_markers() {
        assert_eq!(values("1 stale 2"), [v(1.0), S, v(2.0)]);
        // A ramp from the marker: the marker, then ordinary NaNs.
        let ramp = values("stale+1x2 5");
        assert_eq!(ramp[0], S);
        assert!(matches!(ramp[1], SeriesValue::Value(value) if value.is_nan()));
        assert!(
            matches!(ramp[2], SeriesValue::Value(value) if value.is_nan() && !pharos_promql::is_stale_nan(value))
        );
        assert_eq!(ramp[3], v(5.0));
        assert_eq!(
            S.sample().map(f64::to_bits),
            Some(pharos_promql::STALE_NAN_BITS)
        );
        assert_eq!(O.sample(), None);
    }

    #[test]
    fn labels_of_a_series() -> Result<(), NotationError> {
        assert_eq!(
            parse_labels(r#"http_requests_total{job="api", code="500"}"#)?,
            labels(&[
                ("__name__", "http_requests_total"),
                ("code", "500"),
                ("job", "api")
            ])
        );
        assert_eq!(
            parse_labels(r#"{__name__="up", instance="a:9090"}"#)?,
            labels(&[("__name__", "up"), ("instance", "a:9090")])
        );
        assert_eq!(parse_labels("up")?, labels(&[("__name__", "up")]));
        assert_eq!(
            parse_labels("job:rate5m:sum")?,
            labels(&[("__name__", "job:rate5m:sum")])
        );
        assert_eq!(parse_labels(":m")?, labels(&[("__name__", ":m")]));
        assert_eq!(
            parse_labels(r#"m{a="x",b="y",}"#)?,
            labels(&[("__name__", "m"), ("a", "x"), ("b", "y")])
        );
        assert_eq!(parse_labels(r#"{a="1"}"#)?, labels(&[("a", "1")]));
        Ok(())
    }

    #[test]
    fn keywords_that_are_metric_names() -> Result<(), NotationError> {
        for name in [
            "sum", "by", "without", "offset", "and", "topk", "start", "end", "stale", "x", "limitk",
        ] {
            assert_eq!(parse_labels(name)?, labels(&[("__name__", name)]), "{name}");
        }
        assert_eq!(parse_labels("SUM")?, labels(&[("__name__", "SUM")]));
        Ok(())
    }

    #[test]
    fn label_values_are_unquoted() -> Result<(), NotationError> {
        for (series, value) in [
            (r#"m{a="\x41"}"#, "A"),
            (r#"m{a="\101b"}"#, "Ab"),
            (r"m{a='it\'s'}", "it's"),
            (r#"m{a='"'}"#, "\""),
            (r"m{a=`x\n`}", "x\\n"),
            (r#"m{a="\u00e9\t"}"#, "é\t"),
            (r#"m{a="é"}"#, "é"),
            (r#"m{a="\U0001F600"}"#, "😀"),
        ] {
            assert_eq!(
                parse_labels(series)?,
                labels(&[("__name__", "m"), ("a", value)]),
                "{series}"
            );
        }
        Ok(())
    }

    #[test]
    fn name_in_front_wins_and_empty_values_remove_labels() -> Result<(), NotationError> {
        assert_eq!(
            parse_labels(r#"m{__name__="n"}"#)?,
            labels(&[("__name__", "m")])
        );
        assert_eq!(
            parse_labels(r#"m{a="1", __name__="n", b="2"}"#)?,
            labels(&[("__name__", "m"), ("a", "1"), ("b", "2")])
        );
        assert_eq!(parse_labels(r#"m{a=""}"#)?, labels(&[("__name__", "m")]));
        assert_eq!(
            parse_labels(r#"{__name__="m", a=""}"#)?,
            labels(&[("__name__", "m")])
        );
        // Prometheus' label builder deletes every label named by an empty value.
        assert_eq!(
            parse_labels(r#"m{a="",a="1"}"#)?,
            labels(&[("__name__", "m")])
        );
        assert_eq!(parse_labels(r#"{a="",a="1"}"#)?, labels(&[("a", "1")]));
        Ok(())
    }

    #[test]
    fn label_sets_storage_refuses() {
        assert_eq!(
            parse_labels(r#"m{a="1",a="2"}"#),
            Err(NotationError::DuplicateLabel {
                name: "a".to_owned()
            })
        );
        assert_eq!(parse_labels("{}"), Err(NotationError::EmptyLabelSet));
        assert_eq!(parse_labels(r#"{a=""}"#), Err(NotationError::EmptyLabelSet));
        assert_eq!(parse_labels(""), Err(NotationError::EmptyLabelSet));
        assert_eq!(
            load_error(r#"m{a="1",a="2"}"#, "1"),
            "label name \"a\" is not unique: invalid sample"
        );
        assert_eq!(load_error("{}", "1"), "empty labelset: invalid sample");
    }

    #[test]
    fn values_in_the_series_are_refused_by_parse_labels() {
        assert!(matches!(
            parse_labels("m 1 2"),
            Err(NotationError::Syntax { column: 3, .. })
        ));
        assert!(parse_labels("m ").is_ok());
    }

    #[test]
    fn value_errors_as_promtool_prints_them() {
        let series = r#"m{a="1"}"#;
        for (values, expected) in [
            (
                "1 2 a",
                r#"1:14: parse error: unexpected identifier "a" in series values, expected number or "stale""#,
            ),
            (
                "1+2",
                "1:13: parse error: unexpected end of input in series values",
            ),
            (
                "1x",
                "1:12: parse error: unexpected end of input in series values",
            ),
            ("x3", r#"1:10: parse error: unexpected "x""#),
            (
                "1x3.5",
                r#"1:12: parse error: invalid repetition in series values: strconv.ParseUint: parsing "3.5": invalid syntax"#,
            ),
            (
                "1x-1",
                "1:12: parse error: unexpected <op:-> in series values",
            ),
            (
                "stalex3",
                r#"1:10: parse error: unexpected identifier "stalex3" in series values, expected number or "stale""#,
            ),
            ("stale x3", r#"1:16: parse error: unexpected "x""#),
            (
                "1 # c",
                "1:12: parse error: unexpected character in series sequence: '#'",
            ),
            (
                "1,2",
                "1:11: parse error: unexpected character in series sequence: ','",
            ),
            ("1_000", r#"1:10: parse error: bad number syntax: "1""#),
            (
                "1e400",
                r#"1:10: parse error: error parsing number: strconv.ParseFloat: parsing "1e400": value out of range"#,
            ),
            ("1 sum", "1:12: parse error: unexpected <aggr:sum>"),
            (
                "--1",
                "1:11: parse error: unexpected <op:-> in series values",
            ),
            (
                "1+-2x3",
                "1:12: parse error: unexpected <op:-> in series values",
            ),
            ("1 _a4", r#"1:13: parse error: unexpected identifier "a4""#),
            ("1a", r#"1:10: parse error: bad number syntax: "1""#),
            ("_3", r#"1:11: parse error: unexpected number "3""#),
            (
                "infinity",
                r#"1:10: parse error: unexpected identifier "infinity" in series values, expected number or "stale""#,
            ),
            (
                "a:b",
                r#"1:10: parse error: unexpected metric identifier "a:b""#,
            ),
            (
                "1 2 {",
                "1:14: parse error: unexpected character in series sequence: '{'",
            ),
        ] {
            assert_eq!(load_error(series, values), expected, "{values:?}");
        }
    }

    #[test]
    fn more_value_errors_as_promtool_prints_them() {
        for (values, expected) in [
            (
                "1 2 a",
                r#"1:7: parse error: unexpected identifier "a" in series values, expected number or "stale""#,
            ),
            ("1.2.3", r#"1:6: parse error: unexpected number ".3""#),
            ("12345678901234 x", r#"1:18: parse error: unexpected "x""#),
            ("_ _ x", r#"1:7: parse error: unexpected "x""#),
            (
                "1 + 2",
                r#"1:6: parse error: unexpected " " in series values"#,
            ),
            (
                "1+ 2x3",
                r#"1:5: parse error: unexpected " " in series values"#,
            ),
            (
                "- 1",
                r#"1:4: parse error: unexpected " " in series values"#,
            ),
            (
                "1.2.12345678901234",
                r#"1:6: parse error: unexpected number ".123456789"..."#,
            ),
            (
                "1 .\"",
                "1:5: parse error: unexpected character in series sequence: '.'",
            ),
            (
                "1 é",
                "1:5: parse error: unexpected character in series sequence: 'é'",
            ),
            ("1x3x3", r#"1:6: parse error: unexpected "x""#),
            ("1x3+1", "1:6: parse error: unexpected <op:+>"),
            (
                "1+1 3",
                r#"1:6: parse error: unexpected " " in series values"#,
            ),
            (
                "STALE",
                r#"1:3: parse error: unexpected identifier "STALE" in series values, expected number or "stale""#,
            ),
            (
                "1x",
                "1:5: parse error: unexpected end of input in series values",
            ),
            (
                "_x",
                "1:5: parse error: unexpected end of input in series values",
            ),
            (
                "_x_",
                r#"1:5: parse error: unexpected "_" in series values"#,
            ),
            ("_ x3", r#"1:5: parse error: unexpected "x""#),
            (
                "1 - 1x2",
                r#"1:6: parse error: unexpected " " in series values"#,
            ),
            ("1 start", r#"1:5: parse error: unexpected "start""#),
            ("1 offset", "1:5: parse error: unexpected <offset>"),
            ("1 and", "1:5: parse error: unexpected <op:and>"),
            (
                "1 @",
                "1:5: parse error: unexpected character in series sequence: '@'",
            ),
            ("1 stale{", r#"1:10: parse error: unexpected "{""#),
            (
                "1e",
                r#"1:3: parse error: error parsing number: strconv.ParseFloat: parsing "1e": invalid syntax"#,
            ),
            ("0x1g", r#"1:5: parse error: bad number syntax: "1""#),
        ] {
            assert_eq!(load_error("m", values), expected, "{values:?}");
        }
    }

    #[test]
    fn series_errors_as_promtool_prints_them() {
        for (series, values, expected) in [
            (
                r#"m{a="1""#,
                "1",
                "1:9: parse error: unexpected character inside braces: '1'",
            ),
            (
                "m{a=1}",
                "1",
                "1:5: parse error: unexpected character inside braces: '1'",
            ),
            (
                r#"m {a="1"}"#,
                "1",
                "1:3: parse error: unexpected character in series sequence: '{'",
            ),
            (
                r#"m{a="1"}{b="2"}"#,
                "1",
                "1:9: parse error: unexpected character in series sequence: '{'",
            ),
            (
                r#"m{a!="1"}"#,
                "1",
                r#"1:4: parse error: unexpected <op:!=> in label set, expected "=""#,
            ),
            (
                r#"m{0a="1"}"#,
                "1",
                "1:3: parse error: unexpected character inside braces: '0'",
            ),
            (
                r#"m{a="1"} # c"#,
                "1",
                "1:10: parse error: unexpected character in series sequence: '#'",
            ),
            (
                r#"m{a="1" b="2"}"#,
                "1",
                r#"1:9: parse error: unexpected identifier "b" in label set, expected "," or "}""#,
            ),
            (
                "m{a=}",
                "1",
                r#"1:5: parse error: unexpected "}" in label set, expected string"#,
            ),
            (
                "m{,}",
                "1",
                r#"1:3: parse error: unexpected "," in label set, expected identifier or "}""#,
            ),
            (
                r#"m{"a"="1"}"#,
                "1",
                r#"1:3: parse error: unexpected string "\"a\"" in label set, expected identifier or "}""#,
            ),
            (
                "bool",
                "1",
                "1:1: parse error: unexpected <bool> in series values",
            ),
            (
                "inf",
                "1",
                r#"1:1: parse error: unexpected number "inf" in series values"#,
            ),
            (
                r#"on{a="b"}"#,
                "1",
                "1:1: parse error: unexpected <on> in series values",
            ),
            (
                "atan2",
                "1",
                "1:1: parse error: unexpected <op:atan2> in series values",
            ),
            (
                "group_left",
                "1",
                "1:1: parse error: unexpected <group_left> in series values",
            ),
            (
                "ignoring",
                "1",
                "1:1: parse error: unexpected <ignoring> in series values",
            ),
            (
                r#"m{a:b="1"}"#,
                "1",
                "1:4: parse error: unexpected character inside braces: ':'",
            ),
            (
                r#"m{a="\q"}"#,
                "1",
                "1:5: parse error: unknown escape sequence U+0071 'q'",
            ),
            (
                r#"m{a="x"#,
                "1",
                "1:5: parse error: unterminated quoted string",
            ),
            (
                "m+1",
                "",
                "1:2: parse error: unexpected <op:+> in series values",
            ),
            (
                r#"m{a="1"}1"#,
                "",
                r#"1:9: parse error: unexpected number "1" in series values"#,
            ),
            (
                "5m",
                "1",
                r#"1:1: parse error: unexpected duration "5m" in series values"#,
            ),
            (
                "(m)",
                "1",
                r#"1:1: parse error: unexpected "(" in series values"#,
            ),
            (
                r#"m{a="1","#,
                "",
                "1:9: parse error: unexpected end of input inside braces",
            ),
            (
                r#"m{a=~"1"}"#,
                "1",
                r#"1:4: parse error: unexpected <op:=~> in label set, expected "=""#,
            ),
            (
                r#""m""#,
                "1",
                r#"1:1: parse error: unexpected string "\"m\"" in series values"#,
            ),
            (
                r#"m{a="\uD800"}"#,
                "1",
                "1:5: parse error: escape sequence is an invalid Unicode code point",
            ),
            (
                r#"m{a="\400"}"#,
                "1",
                "1:5: parse error: escape sequence is an invalid Unicode code point",
            ),
            (
                r#"m{a="\x4"}"#,
                "1",
                "1:5: parse error: illegal character U+0022 '\"' in escape sequence",
            ),
            (
                r#"m{a="\"}"#,
                "1",
                "1:5: parse error: unterminated quoted string",
            ),
            (
                r#"m{a="1",,}"#,
                "1",
                r#"1:9: parse error: unexpected "," in label set, expected identifier or "}""#,
            ),
            (
                r#"m{a="1""#,
                "",
                "1:8: parse error: unexpected end of input inside braces",
            ),
            (
                r#"m{a!"1"}"#,
                "1",
                "1:4: parse error: unexpected character after '!' inside braces: '\"'",
            ),
            (
                r#"m{a="1"}}"#,
                "1",
                "1:9: parse error: unexpected character in series sequence: '}'",
            ),
            ("m{{", "1", "1:3: parse error: unexpected left brace '{'"),
            (
                "m}",
                "1",
                "1:2: parse error: unexpected character in series sequence: '}'",
            ),
            (
                "@",
                "1",
                r#"1:1: parse error: unexpected "<Item 57385>" <op:@> in series values"#,
            ),
            (
                ")",
                "1",
                "1:2: parse error: unexpected right parenthesis ')'",
            ),
        ] {
            assert_eq!(
                load_error(series, values),
                expected,
                "{series:?} {values:?}"
            );
        }
    }

    #[test]
    fn values_errors_count_columns_in_the_values() {
        assert_eq!(
            parse_values("1 2 a"),
            Err(NotationError::Syntax {
                column: 5,
                message:
                    r#"unexpected identifier "a" in series values, expected number or "stale""#
                        .to_owned()
            })
        );
        assert!(matches!(
            parse_values("x3"),
            Err(NotationError::Syntax { column: 1, .. })
        ));
    }

    #[test]
    fn huge_expansions_are_refused() {
        assert_eq!(
            parse_values("1x16777216"),
            Err(NotationError::TooManyValues { limit: MAX_VALUES })
        );
        assert_eq!(
            parse_values("_x10 1x16777210"),
            Err(NotationError::TooManyValues { limit: MAX_VALUES })
        );
        assert_eq!(
            parse_values("1x99999999999999999999").map_err(|error| error.to_string()),
            Err(r#"1:3: parse error: invalid repetition in series values: strconv.ParseUint: parsing "99999999999999999999": value out of range"#.to_owned())
        );
    }

    #[test]
    fn a_series_description_line() -> Result<(), NotationError> {
        let description = parse_series_description(r#"up{job="api"} 1 1 0 _ stale"#)?;
        assert_eq!(
            description.labels,
            labels(&[("__name__", "up"), ("job", "api")])
        );
        assert_eq!(description.values, [v(1.0), v(1.0), v(0.0), O, S]);
        assert_eq!(parse_series_description(r#"m{a="1"}"#)?.values, []);
        Ok(())
    }

    #[test]
    fn loading_replaces_repeated_series() -> Result<(), NotationError> {
        let loaded = load_input_series(&[
            (r#"m{a="1"}"#, "1 2 3"),
            (r#"m{a="2"}"#, "7"),
            (r#"{a="1",__name__="m"}"#, "_ 20"),
        ])?;
        assert_eq!(
            loaded,
            [
                SeriesDescription {
                    labels: labels(&[("__name__", "m"), ("a", "1")]),
                    values: vec![O, v(20.0)],
                },
                SeriesDescription {
                    labels: labels(&[("__name__", "m"), ("a", "2")]),
                    values: vec![v(7.0)],
                },
            ]
        );
        Ok(())
    }

    #[test]
    fn loading_splits_lines_as_promtool_does() -> Result<(), NotationError> {
        // A block scalar's final line break ends the load: the next series is dropped.
        let loaded = load_input_series(&[(r#"m{a="1"}"#, "1 2\n"), (r#"m{a="2"}"#, "5")])?;
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].values, [v(1.0), v(2.0)]);
        // A line break inside the values starts another series.
        let loaded = load_input_series(&[(r#"m{a="1"}"#, "1 2\nm{a=\"3\"} 3 4")])?;
        assert_eq!(loaded[1].labels, labels(&[("__name__", "m"), ("a", "3")]));
        assert_eq!(
            load_error(r#"m{a="1"}"#, "1 2\n3 4"),
            r#"1:1: parse error: unexpected number "3" in series values"#
        );
        // A series that starts with `#` ends the load as well.
        assert_eq!(load_input_series(&[("# m", "1"), ("n", "2")])?, []);
        // Values may be empty, and the series may carry values of its own.
        assert_eq!(load_input_series(&[("m", "")])?[0].values, []);
        assert_eq!(
            load_input_series(&[("m 1", "2")])?[0].values,
            [v(1.0), v(2.0)]
        );
        Ok(())
    }

    #[test]
    fn loading_parses_every_line_before_checking_labels() {
        assert_eq!(
            load_input_series(&[("{}", "1"), ("m", "a")]).map_err(|error| error.to_string()),
            Err(r#"1:3: parse error: unexpected identifier "a" in series values, expected number or "stale""#.to_owned())
        );
    }

    #[test]
    fn expected_sample_labels() -> Result<(), NotationError> {
        assert_eq!(
            parse_metric(r#"m {a="1"}"#)?,
            labels(&[("__name__", "m"), ("a", "1")])
        );
        assert_eq!(parse_metric("")?, Labels::empty());
        assert_eq!(parse_metric("{}")?, Labels::empty());
        assert_eq!(parse_metric(" m ")?, labels(&[("__name__", "m")]));
        assert_eq!(parse_metric("m # comment")?, labels(&[("__name__", "m")]));
        assert_eq!(parse_metric("sum")?, labels(&[("__name__", "sum")]));
        assert_eq!(
            parse_metric(r#"m{__name__="n"}"#)?,
            labels(&[("__name__", "m")])
        );
        assert_eq!(parse_metric(r#"m{a=""}"#)?, labels(&[("__name__", "m")]));
        assert_eq!(
            parse_metric(r#"{job="api",code="200"}"#)?,
            labels(&[("code", "200"), ("job", "api")])
        );
        Ok(())
    }

    #[test]
    fn expected_sample_label_errors() {
        for (text, expected) in [
            ("m 1", r#"1:3: parse error: unexpected number "1""#),
            ("bool", "1:1: parse error: unexpected <bool>"),
            ("inf", r#"1:1: parse error: unexpected number "inf""#),
            (
                r#"m{a="1"} {b="2"}"#,
                r#"1:10: parse error: unexpected "{""#,
            ),
            (
                "m{",
                "1:3: parse error: unexpected end of input inside braces",
            ),
            ("5m", r#"1:1: parse error: unexpected duration "5m""#),
        ] {
            assert_eq!(
                parse_metric(text).map_err(|error| error.to_string()),
                Err(expected.to_owned()),
                "{text:?}"
            );
        }
        assert_eq!(
            parse_metric(r#"m{a="1",a="2"}"#),
            Err(NotationError::DuplicateLabel {
                name: "a".to_owned()
            })
        );
        assert_eq!(
            parse_metric(r#"{a=""}"#),
            Err(NotationError::EmptyLabelValue {
                name: "a".to_owned()
            })
        );
    }
}
