//! Alert label and annotation templates, rendered as Prometheus 2.42 renders them
//! (`template/template.go`, `rules/alerting.go`): Go `text/template` (the `gotmpl` crate) with
//! `$labels`, `$externalLabels`, `$externalURL` and `$value` declared in front, missing labels as
//! empty strings, and Prometheus' functions (`humanize*`, `title`, `reReplaceAll`, `query`...).
//!
//! Go prints a float with `%v` (`1.5e+06`), where `gotmpl` prints Rust's shortest form
//! (`1500000`), so every action that prints a value is piped through `__goprint` before parsing;
//! declarations and control actions are left as written.

use std::collections::BTreeMap;
use std::sync::Arc;

use gotmpl::{MissingKey, Template, Value};
use pharos_promql::{Labels, Sample, parse_duration};

/// Runs a PromQL instant query at the evaluation time for the `query` template function.
pub type TemplateQuery<'a> = &'a (dyn Fn(&str) -> Result<Vec<Sample>, String> + Sync);

/// What a rule's templates see (Prometheus' `tmplData`, plus the evaluation time).
pub struct TemplateContext<'a> {
    /// The alert's labels.
    pub labels: &'a Labels,
    /// The sample value.
    pub value: f64,
    pub external_labels: &'a Labels,
    pub external_url: &'a str,
    /// Evaluation time (milliseconds).
    pub time_ms: i64,
    /// `None`: the `query` function fails with a clear message.
    pub query: Option<TemplateQuery<'a>>,
}

/// Why a template could not be parsed or expanded.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("error parsing template {name}: {message}")]
    Parse { name: String, message: String },
    #[error("error executing template {name}: {message}")]
    Execute { name: String, message: String },
}

/// The declarations Prometheus puts in front of every alert template.
const DEFINITIONS: &str = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}";

/// Parses `text` as Prometheus does when checking a rule file: the syntax, and that every
/// function called exists.
pub fn check(name: &str, text: &str) -> Result<(), TemplateError> {
    parse(name, text, None)?;
    match undefined_function(text) {
        Some(function) => Err(TemplateError::Parse {
            name: name.to_owned(),
            message: format!("function {function:?} not defined"),
        }),
        None => Ok(()),
    }
}

/// Go's `text/template` builtins and Prometheus' functions.
const KNOWN_FUNCTIONS: &[&str] = &[
    "and",
    "call",
    "html",
    "index",
    "slice",
    "js",
    "len",
    "not",
    "or",
    "print",
    "printf",
    "println",
    "urlquery",
    "eq",
    "ge",
    "gt",
    "le",
    "lt",
    "ne",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "toTime",
    "toUpper",
    "toLower",
    "title",
    "safeHtml",
    "match",
    "reReplaceAll",
    "args",
    "parseDuration",
    "pathPrefix",
    "externalURL",
    "graphLink",
    "tableLink",
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "sortByLabel",
];

/// Words the template language keeps for itself.
const KEYWORDS: &[&str] = &[
    "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
    "nil", "true", "false",
];

/// The first bare identifier of an action (a function call) that names no known function.
fn undefined_function(text: &str) -> Option<String> {
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        rest = &rest[open..];
        let close = action_end(rest)?;
        let action = &rest[2..close];
        rest = &rest[close + 2..];
        if action
            .trim_start_matches('-')
            .trim_start()
            .starts_with("/*")
        {
            continue;
        }
        let mut chars = action.char_indices().peekable();
        let mut previous: Option<char> = None;
        while let Some((index, c)) = chars.next() {
            if c == '"' || c == '`' || c == '\'' {
                let mut escaped = false;
                for (_, inner) in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if inner == '\\' && c != '`' {
                        escaped = true;
                    } else if inner == c {
                        break;
                    }
                }
                previous = Some(c);
                continue;
            }
            if c.is_alphabetic() || c == '_' {
                let attached = matches!(previous, Some(p) if p == '.' || p == '$' || p.is_alphanumeric() || p == '_');
                let mut end = index + c.len_utf8();
                while let Some(&(next_index, next)) = chars.peek() {
                    if next.is_alphanumeric() || next == '_' {
                        end = next_index + next.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                let word = &action[index..end];
                previous = action[..end].chars().last();
                if !attached && !KEYWORDS.contains(&word) && !KNOWN_FUNCTIONS.contains(&word) {
                    return Some(word.to_owned());
                }
                continue;
            }
            previous = Some(c);
        }
    }
    None
}

/// Expands `text` for one alert.
pub fn expand(
    name: &str,
    text: &str,
    context: &TemplateContext<'_>,
) -> Result<String, TemplateError> {
    // The query function borrows the caller's querier, so its results are gathered before the
    // template runs: each `query "..."` literal of the template is answered up front.
    let answers = answer_queries(text, context);
    let template = parse(name, text, Some((context, answers)))?;
    let data = data(context);
    template
        .execute_to_string(&data)
        .map_err(|error| TemplateError::Execute {
            name: name.to_owned(),
            message: error.to_string(),
        })
}

/// What an alerting rule puts in a label or annotation: the expansion, or
/// `<error expanding template: ...>` as Prometheus writes it.
pub fn expand_for_alert(name: &str, text: &str, context: &TemplateContext<'_>) -> String {
    expand(name, text, context)
        .unwrap_or_else(|error| format!("<error expanding template: {error}>"))
}

type Answers = BTreeMap<String, Result<Vec<Sample>, String>>;

/// Runs the query of every `query "LITERAL"` in `text` (the form Prometheus' docs use).
fn answer_queries(text: &str, context: &TemplateContext<'_>) -> Answers {
    let mut answers = Answers::new();
    let Some(query) = context.query else {
        return answers;
    };
    let mut rest = text;
    while let Some(at) = rest.find("query") {
        rest = &rest[at + "query".len()..];
        let trimmed = rest.trim_start();
        let Some(quote) = trimmed.chars().next().filter(|c| *c == '"' || *c == '`') else {
            continue;
        };
        let body = &trimmed[1..];
        let Some(end) = (if quote == '`' {
            body.find('`')
        } else {
            find_closing_quote(body)
        }) else {
            continue;
        };
        let literal = &body[..end];
        let expr = if quote == '"' {
            unescape_go(literal)
        } else {
            literal.to_owned()
        };
        answers.entry(expr.clone()).or_insert_with(|| query(&expr));
    }
    answers
}

fn find_closing_quote(body: &str) -> Option<usize> {
    let mut escaped = false;
    for (index, c) in body.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(index),
            _ => escaped = false,
        }
    }
    None
}

fn unescape_go(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

fn parse(
    name: &str,
    text: &str,
    context: Option<(&TemplateContext<'_>, Answers)>,
) -> Result<Template, TemplateError> {
    let source = format!("{DEFINITIONS}{}", pipe_prints(text));
    let (external_url, answers) = match context {
        Some((context, answers)) => (context.external_url.to_owned(), Some(answers)),
        None => (String::new(), None),
    };
    functions(Template::new(name), external_url, answers)
        .missing_key(MissingKey::ZeroValue)
        .parse(&source)
        .map_err(|error| TemplateError::Parse {
            name: name.to_owned(),
            message: error.to_string(),
        })
}

/// The template's data: `.Labels`, `.ExternalLabels`, `.ExternalURL`, `.Value`.
fn data(context: &TemplateContext<'_>) -> Value {
    let mut map: BTreeMap<Arc<str>, Value> = BTreeMap::new();
    map.insert("Labels".into(), labels_value(context.labels));
    map.insert(
        "ExternalLabels".into(),
        labels_value(context.external_labels),
    );
    map.insert(
        "ExternalURL".into(),
        Value::String(context.external_url.into()),
    );
    map.insert("Value".into(), Value::Float(context.value));
    Value::Map(Arc::new(map))
}

fn labels_value(labels: &Labels) -> Value {
    Value::Map(Arc::new(
        labels
            .iter()
            .map(|label| {
                (
                    Arc::from(label.name.as_str()),
                    Value::String(label.value.as_str().into()),
                )
            })
            .collect(),
    ))
}

fn exec_error(message: impl Into<String>) -> gotmpl::TemplateError {
    gotmpl::TemplateError::Exec(message.into())
}

/// Prometheus' template functions.
fn functions(template: Template, external_url: String, answers: Option<Answers>) -> Template {
    let answers = Arc::new(answers.unwrap_or_default());
    let url_for_prefix = external_url.clone();
    template
        .func("__goprint", |args| {
            Ok(match args {
                [Value::Float(v)] => Value::String(go_float(*v).into()),
                // A label that is not there: Go's zero value of a string.
                [Value::Nil] => Value::String("".into()),
                [other] => other.clone(),
                _ => Value::String(String::new().into()),
            })
        })
        .func("humanize", |args| {
            let v = number_arg(args, "humanize")?;
            Ok(Value::String(humanize(v).into()))
        })
        .func("humanize1024", |args| {
            let v = number_arg(args, "humanize1024")?;
            Ok(Value::String(humanize1024(v).into()))
        })
        .func("humanizeDuration", |args| {
            let v = number_arg(args, "humanizeDuration")?;
            Ok(Value::String(humanize_duration(v).into()))
        })
        .func("humanizePercentage", |args| {
            let v = number_arg(args, "humanizePercentage")?;
            Ok(Value::String(format!("{}%", go_g(v * 100.0, 4)).into()))
        })
        .func("humanizeTimestamp", |args| {
            let v = number_arg(args, "humanizeTimestamp")?;
            Ok(Value::String(humanize_timestamp(v).into()))
        })
        .func("toTime", |args| {
            let v = number_arg(args, "toTime")?;
            Ok(Value::String(humanize_timestamp(v).into()))
        })
        .func("toUpper", |args| Ok(Value::String(string_arg(args, 0)?.to_uppercase().into())))
        .func("toLower", |args| Ok(Value::String(string_arg(args, 0)?.to_lowercase().into())))
        .func("title", |args| Ok(Value::String(title(&string_arg(args, 0)?).into())))
        .func("safeHtml", |args| Ok(Value::String(string_arg(args, 0)?.into())))
        .func("match", |args| {
            let pattern = string_arg(args, 0)?;
            let text = string_arg(args, 1)?;
            let regex = regex::Regex::new(&pattern).map_err(|e| exec_error(e.to_string()))?;
            Ok(Value::Bool(regex.is_match(&text)))
        })
        .func("reReplaceAll", |args| {
            let pattern = string_arg(args, 0)?;
            let replacement = string_arg(args, 1)?;
            let text = string_arg(args, 2)?;
            let regex = regex::Regex::new(&pattern).map_err(|e| exec_error(e.to_string()))?;
            Ok(Value::String(regex.replace_all(&text, replacement.as_str()).into_owned().into()))
        })
        .func("args", |args| {
            let map: BTreeMap<Arc<str>, Value> = args
                .iter()
                .enumerate()
                .map(|(index, value)| (Arc::from(format!("arg{index}").as_str()), value.clone()))
                .collect();
            Ok(Value::Map(Arc::new(map)))
        })
        .func("parseDuration", |args| {
            let text = string_arg(args, 0)?;
            let ms = parse_duration(&text)
                .ok_or_else(|| exec_error(format!("not a valid duration string: {text:?}")))?;
            Ok(Value::Float(ms as f64 / 1000.0))
        })
        .func("pathPrefix", move |_| Ok(Value::String(url_path(&url_for_prefix).into())))
        .func("externalURL", move |_| Ok(Value::String(external_url.as_str().into())))
        .func("graphLink", |args| {
            Ok(Value::String(
                format!("/graph?g0.expr={}&g0.tab=0", query_escape(&string_arg(args, 0)?)).into(),
            ))
        })
        .func("tableLink", |args| {
            Ok(Value::String(
                format!("/graph?g0.expr={}&g0.tab=1", query_escape(&string_arg(args, 0)?)).into(),
            ))
        })
        .func("query", move |args| {
            let expr = string_arg(args, 0)?;
            match answers.get(&expr) {
                Some(Ok(samples)) => Ok(Value::List(samples.iter().map(sample_value).collect())),
                Some(Err(error)) => Err(exec_error(error.clone())),
                None => Err(exec_error(format!(
                    "the query function is not available here (query {expr:?}); Pharos answers queries written as literals in alert templates"
                ))),
            }
        })
        .func("first", |args| match args.first() {
            Some(Value::List(items)) => items
                .first()
                .cloned()
                .ok_or_else(|| exec_error("first() called on vector with no elements")),
            _ => Err(exec_error("first() expects a query result")),
        })
        .func("label", |args| {
            let name = string_arg(args, 0)?;
            let labels = args.get(1).and_then(|sample| sample.field("Labels"));
            Ok(labels
                .and_then(|labels| labels.field(&name))
                .cloned()
                .unwrap_or_else(|| Value::String("".into())))
        })
        .func("value", |args| {
            Ok(args
                .first()
                .and_then(|sample| sample.field("Value"))
                .cloned()
                .unwrap_or(Value::Float(0.0)))
        })
        .func("strvalue", |args| {
            Ok(args
                .first()
                .and_then(|sample| sample.field("Labels"))
                .and_then(|labels| labels.field("__value__"))
                .cloned()
                .unwrap_or_else(|| Value::String("".into())))
        })
        .func("sortByLabel", |args| {
            let name = string_arg(args, 0)?;
            let Some(Value::List(items)) = args.get(1) else {
                return Err(exec_error("sortByLabel expects a query result"));
            };
            let key = |sample: &Value| {
                sample
                    .field("Labels")
                    .and_then(|labels| labels.field(&name))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned()
            };
            let mut sorted: Vec<Value> = items.to_vec();
            sorted.sort_by_key(key);
            Ok(Value::List(sorted.into()))
        })
}

fn sample_value(sample: &Sample) -> Value {
    let mut map: BTreeMap<Arc<str>, Value> = BTreeMap::new();
    map.insert("Labels".into(), labels_value(&sample.labels));
    map.insert("Value".into(), Value::Float(sample.v));
    Value::Map(Arc::new(map))
}

/// A number argument as Prometheus' `convertToFloat` reads it: numbers, or strings that parse.
fn number_arg(args: &[Value], function: &str) -> gotmpl::Result<f64> {
    match args.first() {
        Some(Value::Float(v)) => Ok(*v),
        Some(Value::Int(v)) => Ok(*v as f64),
        Some(Value::Uint(v)) => Ok(*v as f64),
        Some(Value::String(text)) => parse_go_float(text).ok_or_else(|| {
            exec_error(format!(
                "strconv.ParseFloat: parsing {text:?}: invalid syntax"
            ))
        }),
        Some(other) => Err(exec_error(format!(
            "{function}: can't convert {} to float",
            other.type_name()
        ))),
        None => Err(exec_error(format!(
            "wrong number of args for {function}: want 1 got 0"
        ))),
    }
}

fn parse_go_float(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "Inf" | "+Inf" | "inf" | "+inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

fn string_arg(args: &[Value], index: usize) -> gotmpl::Result<String> {
    match args.get(index) {
        Some(Value::String(text)) => Ok(text.to_string()),
        Some(Value::Float(v)) => Ok(go_float(*v)),
        Some(other) => Ok(other.to_string()),
        None => Err(exec_error(format!("missing argument {}", index + 1))),
    }
}

/// The path of the external URL (`pathPrefix`).
fn url_path(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    match after_scheme.find('/') {
        Some(at) => after_scheme[at..].trim_end_matches('/').to_owned(),
        None => String::new(),
    }
}

/// Go's `url.QueryEscape`.
fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// Go's deprecated `strings.Title`: the first letter of each word in title case.
fn title(text: &str) -> String {
    let mut previous = ' ';
    text.chars()
        .map(|c| {
            let separator = if previous.is_ascii() {
                !(previous.is_ascii_alphanumeric() || previous == '_')
            } else {
                previous.is_whitespace()
            };
            previous = c;
            if separator {
                c.to_uppercase().next().unwrap_or(c)
            } else {
                c
            }
        })
        .collect()
}

/// Prometheus' `humanize`: SI prefixes, 4 significant digits.
pub fn humanize(mut v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return go_g(v, 4);
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", go_g(v, 4))
}

/// Prometheus' `humanize1024`: binary prefixes.
pub fn humanize1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || !v.is_finite() {
        return go_g(v, 4);
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", go_g(v, 4))
}

/// Prometheus' `humanizeDuration`: seconds as `1d 2h 3m 4s`, or with SI prefixes below one.
pub fn humanize_duration(mut v: f64) -> String {
    if !v.is_finite() {
        return go_g(v, 4);
    }
    if v == 0.0 {
        return format!("{}s", go_g(v, 4));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        v = v.abs();
        let duration = v as i64;
        let seconds = duration % 60;
        let minutes = (duration / 60) % 60;
        let hours = (duration / 3600) % 24;
        let days = duration / 86_400;
        if days != 0 {
            return format!("{sign}{days}d {hours}h {minutes}m {seconds}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {minutes}m {seconds}s");
        }
        if minutes != 0 {
            return format!("{sign}{minutes}m {seconds}s");
        }
        return format!("{sign}{}s", go_g(v, 4));
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", go_g(v, 4))
}

/// Prometheus' `humanizeTimestamp`: Unix seconds as Go prints a UTC `time.Time`.
fn humanize_timestamp(v: f64) -> String {
    if !v.is_finite() {
        return go_g(v, 4);
    }
    let seconds = v.trunc() as i64;
    let nanos = ((v - v.trunc()) * 1e9).round() as u32;
    match chrono::DateTime::from_timestamp(seconds, nanos) {
        Some(time) => {
            let fraction = if nanos == 0 {
                String::new()
            } else {
                format!(".{nanos:09}").trim_end_matches('0').to_owned()
            };
            format!("{}{fraction} +0000 UTC", time.format("%Y-%m-%d %H:%M:%S"))
        }
        None => go_g(v, 4),
    }
}

/// A float as Go's `%v` prints it: shortest digits, exponent form below 1e-4 and from 1e6.
pub fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    let (_, exponent) = split_exponent(&format!("{v:e}"));
    if !(-4..6).contains(&exponent) {
        return go_exponent_form(v);
    }
    format!("{v}")
}

/// A finite float as Go's `strconv.FormatFloat(v, 'e', -1, 64)` writes it: the shortest
/// digits and a signed exponent of at least two digits (`1.5e+06`, `0e+00`).
pub(crate) fn go_exponent_form(v: f64) -> String {
    let (mantissa, exponent) = split_exponent(&format!("{v:e}"));
    format!("{mantissa}{}", exponent_suffix(exponent))
}

/// A float as Go's `%.{precision}g` prints it.
pub fn go_g(v: f64, precision: usize) -> String {
    if v.is_nan() {
        return "NaN".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    let precision = precision.max(1);
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    let (mantissa, exponent) = split_exponent(&format!("{:.*e}", precision - 1, v));
    let digits: String = mantissa
        .chars()
        .filter(char::is_ascii_digit)
        .collect::<String>()
        .trim_end_matches('0')
        .to_owned();
    let digit_count = digits.len().max(1) as i32;
    let decimal_point = exponent + 1;
    let mut exponent_precision = precision as i32;
    if exponent_precision > digit_count && digit_count >= decimal_point {
        exponent_precision = digit_count;
    }
    if exponent < -4 || exponent >= exponent_precision {
        let shown = (precision as i32).min(digit_count) as usize;
        let sign = if v < 0.0 { "-" } else { "" };
        let mut out = format!("{sign}{}", &digits[..1]);
        if shown > 1 {
            out.push('.');
            out.push_str(&digits[1..shown]);
        }
        return format!("{out}{}", exponent_suffix(exponent));
    }
    let shown = if precision as i32 > decimal_point {
        digit_count
    } else {
        precision as i32
    };
    let decimals = (shown - decimal_point).max(0) as usize;
    format!("{v:.decimals$}")
}

fn split_exponent(text: &str) -> (String, i32) {
    match text.split_once('e') {
        Some((mantissa, exponent)) => (mantissa.to_owned(), exponent.parse().unwrap_or(0)),
        None => (text.to_owned(), 0),
    }
}

fn exponent_suffix(exponent: i32) -> String {
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("e{sign}{:02}", exponent.abs())
}

/// Pipes every action that prints a value through `__goprint`, so floats print as Go prints
/// them. Declarations, assignments, comments and control actions are left as written.
fn pipe_prints(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        rest = &rest[open..];
        let Some(close) = action_end(rest) else {
            out.push_str(rest);
            return out;
        };
        let action = &rest[..close + 2];
        out.push_str(&rewrite_action(action));
        rest = &rest[close + 2..];
    }
    out.push_str(rest);
    out
}

/// The index of the `}}` closing the action `text` starts with, skipping quoted strings.
fn action_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut index = 2;
    let mut quote: Option<u8> = None;
    while index + 1 < bytes.len() + 1 && index < bytes.len() {
        let byte = bytes[index];
        match quote {
            Some(q) => {
                if byte == b'\\' && q != b'`' {
                    index += 1;
                } else if byte == q {
                    quote = None;
                }
            }
            None => {
                if byte == b'"' || byte == b'`' || byte == b'\'' {
                    quote = Some(byte);
                } else if byte == b'}' && bytes.get(index + 1) == Some(&b'}') {
                    return Some(index);
                }
            }
        }
        index += 1;
    }
    None
}

fn rewrite_action(action: &str) -> String {
    let inner = &action[2..action.len() - 2];
    let (left_trim, body) = match inner.strip_prefix("- ") {
        Some(body) => ("- ", body),
        None => ("", inner),
    };
    let (body, right_trim) = match body.strip_suffix(" -") {
        Some(body) => (body, " -"),
        None => (body, ""),
    };
    let word = body.trim_start();
    let first: String = word
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    let control = matches!(
        first.as_str(),
        "if" | "else"
            | "end"
            | "range"
            | "with"
            | "define"
            | "template"
            | "block"
            | "break"
            | "continue"
    );
    let comment = word.starts_with("/*");
    let declaration = word.starts_with('$') && {
        let mut depth = 0;
        let mut found = false;
        for (index, c) in word.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                '"' | '`' | '|' => break,
                ':' if depth == 0 && word[index..].starts_with(":=") => {
                    found = true;
                    break;
                }
                '=' if depth == 0 && !word[index..].starts_with("==") => {
                    found = true;
                    break;
                }
                _ => {}
            }
        }
        found
    };
    if control || comment || declaration || body.trim().is_empty() {
        return action.to_owned();
    }
    format!("{{{{{left_trim}({body}) | __goprint{right_trim}}}}}")
}

#[cfg(test)]
mod tests {
    use super::{TemplateContext, check, expand, go_float, go_g, humanize, humanize_duration};
    use pharos_promql::Labels;

    fn render(text: &str, value: f64) -> String {
        let labels = Labels::from_pairs([("instance", "db-1:9100"), ("job", "node")]);
        let external = Labels::from_pairs([("cluster", "eu-1")]);
        let context = TemplateContext {
            labels: &labels,
            value,
            external_labels: &external,
            external_url: "http://pharos.example/alerts",
            time_ms: 0,
            query: None,
        };
        expand("__alert_Test", text, &context).expect("expands")
    }

    #[test]
    fn floats_print_as_go_prints_them() {
        assert_eq!(go_float(1.5e6), "1.5e+06");
        assert_eq!(go_float(100000.0), "100000");
        assert_eq!(go_float(0.1), "0.1");
        assert_eq!(go_float(1e-5), "1e-05");
        assert_eq!(go_float(123456789.0), "1.23456789e+08");
        assert_eq!(go_g(100.0, 4), "100");
        assert_eq!(go_g(1234.5678, 4), "1235");
        assert_eq!(go_g(0.00012345, 4), "0.0001234");
        assert_eq!(go_g(1.5e-5, 4), "1.5e-05");
        assert_eq!(humanize(1234.0), "1.234k");
        assert_eq!(humanize(1.5e6), "1.5M");
        assert_eq!(humanize(0.001), "1m");
        assert_eq!(humanize_duration(3600.0 * 25.0 + 1.0), "1d 1h 0m 1s");
        assert_eq!(humanize_duration(0.5), "500ms");
    }

    #[test]
    fn templates_see_labels_value_and_external_labels() {
        assert_eq!(
            render("{{ $labels.instance }} is {{ $value }}", 1.5e6),
            "db-1:9100 is 1.5e+06"
        );
        assert_eq!(
            render("{{ $externalLabels.cluster }}/{{ $labels.missing }}.", 1.0),
            "eu-1/."
        );
        assert_eq!(render("{{ humanize $value }}", 1234.0), "1.234k");
        assert_eq!(render("{{ $value | humanizePercentage }}", 0.256), "25.6%");
        assert_eq!(render("{{ printf \"%.2f\" $value }}", 7.12945), "7.13");
        assert_eq!(
            render("{{ if gt $value 80.0 }}high{{ else }}ok{{ end }}", 90.0),
            "high"
        );
        assert_eq!(render("{{ .Labels.job | toUpper }}", 0.0), "NODE");
        assert_eq!(
            render(
                "{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}",
                0.0
            ),
            "instance=db-1:9100;job=node;"
        );
        assert_eq!(
            render("{{ title \"disk almost full\" }}", 0.0),
            "Disk Almost Full"
        );
        assert_eq!(render("{{- $x := 2 -}} {{ $x }}", 0.0), "2");
    }

    #[test]
    fn bad_templates_are_refused_at_check_time() {
        assert!(check("__alert_X", "{{ $labels.job ").is_err());
        assert!(check("__alert_X", "{{ if }}").is_err());
        assert!(check("__alert_X", "{{ nosuchfunction 1 }}").is_err());
        assert!(check("__alert_X", "{{ humanize $value }} {{/* note */}}").is_ok());
    }
}
