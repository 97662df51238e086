//! Metric and label names the way Prometheus v2.53 names OTLP metrics
//! (`storage/remote/otlptranslator/prometheus/normalize_name.go` and `normalize_label.go` at
//! tag v2.53.0, with `add_metric_suffixes: true`, Prometheus' default), so that dashboards and
//! rules written for Prometheus' OTLP receiver read the same series here.
//!
//! Names: the OTLP name is split into words at every character that is not a letter or a digit
//! (so runs of `_`, `.`, `:` and the like become one `_`, and leading or trailing ones go), the
//! unit's words follow (`s` → `seconds`, `By/s` → `bytes_per_second`, annotations in `{}`
//! dropped, a unit word already in the name not repeated), then `total` for monotonic sums and
//! `ratio` for gauges of unit `1` (each moved to the end if the name had it elsewhere), joined
//! with `_`; a name starting with a digit gets a `_` before it.
//!
//! Labels: every character that is not a letter or a digit becomes `_` (runs are kept); a label
//! starting with a digit gets `key_` before it, one starting with a single `_` gets `key`.
//!
//! Letters and digits are Unicode ones, as in that version; Pharos' own validation then refuses
//! names outside `[a-zA-Z_:][a-zA-Z0-9_:]*` with a reason, as it does for every write.

/// What kind of OTLP metric a name is built for: only monotonic sums and gauges change it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Gauge,
    /// A sum; monotonic ones are counters and end in `_total`.
    Sum {
        monotonic: bool,
    },
    /// Histograms, exponential histograms and summaries: the unit only.
    Other,
}

/// OTLP (UCUM) units to Prometheus base-unit words, the translator's `unitMap`.
fn unit_word(unit: &str) -> &str {
    match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "",
        "%" => "percent",
        other => other,
    }
}

/// The denominator of a `x/y` unit, the translator's `perUnitMap`: `s` → `second`.
fn per_unit_word(unit: &str) -> &str {
    match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => other,
    }
}

/// Go's `unicode.IsLetter(r) || unicode.IsDigit(r)`.
fn letter_or_digit(c: char) -> bool {
    c.is_alphabetic() || c.is_numeric()
}

/// The words of `text`: the runs of letters and digits.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !letter_or_digit(c))
        .filter(|word| !word.is_empty())
}

/// The translator's `CleanUpString`: the words of `text` joined with `_`.
fn clean_up(text: &str) -> String {
    words(text).collect::<Vec<_>>().join("_")
}

/// Unit words to append: `""` and annotations (`{requests}`) add none.
fn unit_suffix(part: &str, map: fn(&str) -> &str) -> Option<String> {
    let part = part.trim();
    if part.is_empty() || part.contains(['{', '}']) {
        return None;
    }
    Some(clean_up(map(part))).filter(|word| !word.is_empty())
}

/// The Prometheus name of an OTLP metric of `kind` named `name` with unit `unit`.
pub(super) fn metric_name(name: &str, unit: &str, kind: Kind) -> String {
    let mut tokens: Vec<String> = words(name).map(str::to_owned).collect();
    let mut parts = unit.splitn(2, '/');
    if let Some(main) = parts.next().and_then(|main| unit_suffix(main, unit_word))
        && !tokens.contains(&main)
    {
        tokens.push(main);
    }
    if let Some(per) = parts.next().and_then(|per| unit_suffix(per, per_unit_word))
        && !tokens.contains(&per)
    {
        tokens.push("per".to_owned());
        tokens.push(per);
    }
    let mut move_to_end = |word: &str| {
        tokens.retain(|token| token != word);
        tokens.push(word.to_owned());
    };
    if kind == (Kind::Sum { monotonic: true }) {
        move_to_end("total");
    }
    if unit == "1" && kind == Kind::Gauge {
        move_to_end("ratio");
    }
    let name = tokens.join("_");
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{name}")
    } else {
        name
    }
}

/// The Prometheus name of an OTLP attribute key.
pub(super) fn label_name(key: &str) -> String {
    let label: String = key
        .chars()
        .map(|c| if letter_or_digit(c) { c } else { '_' })
        .collect();
    if label.starts_with(|c: char| c.is_ascii_digit()) {
        format!("key_{label}")
    } else if label.starts_with('_') && !label.starts_with("__") {
        format!("key{label}")
    } else {
        label
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COUNTER: Kind = Kind::Sum { monotonic: true };
    const UP_DOWN: Kind = Kind::Sum { monotonic: false };

    #[test]
    fn units_become_suffixes() {
        let cases = [
            (
                "http.server.duration",
                "s",
                Kind::Other,
                "http_server_duration_seconds",
            ),
            (
                "rpc.duration",
                "ms",
                Kind::Other,
                "rpc_duration_milliseconds",
            ),
            ("memory.usage", "By", Kind::Gauge, "memory_usage_bytes"),
            ("net.io", "By/s", Kind::Gauge, "net_io_bytes_per_second"),
            ("cpu.utilization", "1", Kind::Gauge, "cpu_utilization_ratio"),
            ("requests", "{requests}", Kind::Gauge, "requests"),
            ("packets", "{packets}/s", Kind::Gauge, "packets_per_second"),
            ("temp", "Cel", Kind::Gauge, "temp_celsius"),
            ("disk", "GiBy", Kind::Gauge, "disk_gibibytes"),
            ("load", "%", Kind::Gauge, "load_percent"),
            ("speed", "m/h", Kind::Gauge, "speed_meters_per_hour"),
            (
                "odd",
                "furlongs/fortnight",
                Kind::Gauge,
                "odd_furlongs_per_fortnight",
            ),
            ("latency_seconds", "s", Kind::Other, "latency_seconds"),
            ("bytes.sent", "By", Kind::Gauge, "bytes_sent"),
            ("plain", "", Kind::Gauge, "plain"),
            ("spaced", " s ", Kind::Gauge, "spaced_seconds"),
            ("throughput", "By/", Kind::Gauge, "throughput_bytes"),
        ];
        for (name, unit, kind, expected) in cases {
            assert_eq!(metric_name(name, unit, kind), expected, "{name} {unit}");
        }
    }

    #[test]
    fn total_comes_after_the_unit_and_only_once() {
        assert_eq!(
            metric_name("http.server.duration", "s", COUNTER),
            "http_server_duration_seconds_total"
        );
        assert_eq!(
            metric_name("requests", "{requests}", COUNTER),
            "requests_total"
        );
        assert_eq!(
            metric_name("requests_total", "1", COUNTER),
            "requests_total"
        );
        assert_eq!(metric_name("sent_total", "By", COUNTER), "sent_bytes_total");
        assert_eq!(metric_name("total.requests", "", COUNTER), "requests_total");
        assert_eq!(metric_name("queue.size", "", UP_DOWN), "queue_size");
        assert_eq!(metric_name("requests_total", "", UP_DOWN), "requests_total");
        // `_ratio` is for gauges only, counters of unit 1 get none.
        assert_eq!(metric_name("hits", "1", COUNTER), "hits_total");
        assert_eq!(metric_name("ratio.used", "1", Kind::Gauge), "used_ratio");
    }

    #[test]
    fn names_are_sanitized_like_the_translator() {
        assert_eq!(metric_name("a..b__c", "", Kind::Gauge), "a_b_c");
        assert_eq!(metric_name("_leading", "", Kind::Gauge), "leading");
        assert_eq!(metric_name("ns:metric", "", Kind::Gauge), "ns_metric");
        assert_eq!(metric_name("9lives", "", Kind::Gauge), "_9lives");
        assert_eq!(metric_name("2xx", "s", COUNTER), "_2xx_seconds_total");
        assert_eq!(metric_name("...", "", Kind::Gauge), "");
    }

    #[test]
    fn labels_are_sanitized_like_the_translator() {
        assert_eq!(label_name("http.method"), "http_method");
        assert_eq!(label_name("a..b"), "a__b");
        assert_eq!(label_name("0day"), "key_0day");
        assert_eq!(label_name("_private"), "key_private");
        assert_eq!(label_name(".hidden"), "key_hidden");
        assert_eq!(label_name("__reserved"), "__reserved");
        assert_eq!(label_name("with:colon"), "with_colon");
        assert_eq!(label_name(""), "");
    }
}
