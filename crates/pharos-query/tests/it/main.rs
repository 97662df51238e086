//! The query service end to end: points stored as the ingest service stores them, then read
//! back through the Prometheus HTTP API over real HTTP on loopback, on SQLite and PostgreSQL:
//! instant and range queries, series metadata, bearer tokens, every error in Prometheus' own
//! error types, and the PromQL conformance corpus compared with a real Prometheus 2.42
//! (`conformance`, which shares `pharos-promql`'s harness).

mod conformance;
#[path = "../../../pharos-promql/tests/it/dataset.rs"]
mod dataset;
#[path = "../../../pharos-promql/tests/it/harness.rs"]
mod harness;
#[path = "../../../pharos-promql/tests/it/prometheus.rs"]
mod prometheus;

use conformance::the_http_api_answers_the_corpus_as_prometheus_does;
use pharos_query::{QueryModule, QuerySettings};
use pharos_store::Store;
use pharos_store::signals::metrics::{NewSeries, PointRow, SeriesKey};
use pharos_store::testing::TestDatabase;
use pharos_test_support::TestServer;
use serde_json::Value as Json;

pharos_store::backend_tests!(
    instant_and_range_queries_read_the_stored_points,
    series_label_names_and_values_follow_the_selectors,
    errors_carry_prometheus_error_types_and_status_codes,
    nan_values_read_back_as_nan,
    the_http_api_obeys_bearer_tokens,
    the_http_api_answers_the_corpus_as_prometheus_does,
    a_query_past_its_timeout_answers_a_timeout_error,
    whole_hour_windows_read_the_hourly_rollups_with_the_same_answers,
);

/// 2023-11-14T22:13:20Z: a fixed time well in the past, on a minute boundary.
const BASE_MS: i64 = 1_700_000_000_000;
const STEP_MS: i64 = 15_000;

/// Stores `name{labels}` with a point every 15 s from `BASE_MS`, valued by `value(i)`.
async fn store_series(
    store: &Store,
    name: &str,
    labels: &[(&str, &str)],
    points: usize,
    value: impl Fn(usize) -> f64,
) {
    let mut sorted: Vec<(String, String)> = labels
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    sorted.sort();
    let labels_key = sorted
        .iter()
        .map(|(n, v)| format!("{n}={v:?}"))
        .collect::<Vec<_>>()
        .join(",");
    let series = NewSeries {
        key: SeriesKey {
            name: name.to_owned(),
            labels_key,
        },
        labels: sorted,
    };
    let metrics = store.metrics();
    let ids = metrics
        .create_series(std::slice::from_ref(&series))
        .await
        .expect("create the series");
    let id = ids[&series.key].0;
    let rows: Vec<PointRow> = (0..points)
        .map(|i| PointRow {
            series_id: id,
            time_us: (BASE_MS + i as i64 * STEP_MS) * 1000,
            value: value(i),
        })
        .collect();
    let (first, last) = (rows[0].time_us, rows[rows.len() - 1].time_us);
    metrics
        .ensure_partitions(first, last)
        .await
        .expect("partitions for the points");
    metrics
        .insert_points(&rows, None)
        .await
        .expect("store the points");
}

/// Two counters of job `api` growing 1/s and 2/s, one of job `db` at 10/s, a gauge, and a
/// histogram, 121 points each (30 minutes).
async fn store_data_set(store: &Store) {
    store_series(
        store,
        "http_requests_total",
        &[("job", "api"), ("instance", "a")],
        121,
        |i| 15.0 * i as f64,
    )
    .await;
    store_series(
        store,
        "http_requests_total",
        &[("job", "api"), ("instance", "b")],
        121,
        |i| 30.0 * i as f64,
    )
    .await;
    store_series(
        store,
        "http_requests_total",
        &[("job", "db"), ("instance", "c")],
        121,
        |i| 150.0 * i as f64,
    )
    .await;
    store_series(store, "temperature_celsius", &[("room", "lab")], 121, |i| {
        20.0 + (i % 4) as f64
    })
    .await;
    for (le, share) in [("0.1", 0.5), ("0.5", 0.9), ("+Inf", 1.0)] {
        store_series(
            store,
            "latency_seconds_bucket",
            &[("job", "api"), ("le", le)],
            121,
            move |i| share * 100.0 * i as f64,
        )
        .await;
    }
}

async fn start(database: &TestDatabase, settings: QuerySettings) -> TestServer {
    let store = database.store().await;
    store_data_set(&store).await;
    TestServer::builder(store)
        .module(QueryModule::new(settings))
        .start()
        .await
}

/// GETs `path` (with its query string) and returns the status and the JSON body.
async fn get(server: &TestServer, path_and_query: &str) -> (u16, Json) {
    let response = reqwest::get(server.http_url(path_and_query))
        .await
        .expect("the HTTP API answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

/// POSTs a form to `path`, as Grafana's data source does by default.
async fn post(server: &TestServer, path: &str, form: &[(&str, &str)]) -> (u16, Json) {
    let response = reqwest::Client::new()
        .post(server.http_url(path))
        .form(form)
        .send()
        .await
        .expect("the HTTP API answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

fn seconds(ms: i64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

fn value_of(sample: &Json) -> f64 {
    sample["value"][1]
        .as_str()
        .expect("a value string")
        .parse()
        .expect("a float")
}

async fn instant_and_range_queries_read_the_stored_points(database: &TestDatabase) {
    let server = start(database, QuerySettings::default()).await;
    let at = seconds(BASE_MS + 20 * 60_000);

    // 21 points span the 5-minute window exactly, so rate is the slope with no extrapolation.
    let (status, body) = get(
        &server,
        &format!(
            "/api/v1/query?query=sum%20by%20(job)%20(rate(http_requests_total%5B5m%5D))&time={at}"
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "success");
    assert_eq!(body["data"]["resultType"], "vector");
    let mut rates: Vec<(String, f64)> = body["data"]["result"]
        .as_array()
        .expect("a result list")
        .iter()
        .map(|sample| {
            (
                sample["metric"]["job"].as_str().unwrap_or("").to_owned(),
                value_of(sample),
            )
        })
        .collect();
    rates.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(rates.len(), 2, "{body}");
    assert_eq!(rates[0].0, "api");
    assert!((rates[0].1 - 3.0).abs() < 1e-9, "{rates:?}");
    assert!((rates[1].1 - 10.0).abs() < 1e-9, "{rates:?}");
    assert_eq!(
        body["data"]["result"][0]["value"][0].as_f64(),
        Some((BASE_MS + 20 * 60_000) as f64 / 1000.0)
    );

    // A range query by form POST: one point per minute from minute 10 to minute 20.
    let (status, body) = post(
        &server,
        "/api/v1/query_range",
        &[
            ("query", "temperature_celsius"),
            ("start", &seconds(BASE_MS + 10 * 60_000)),
            ("end", &seconds(BASE_MS + 20 * 60_000)),
            ("step", "1m"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["resultType"], "matrix");
    let series = &body["data"]["result"][0];
    assert_eq!(series["metric"]["__name__"], "temperature_celsius");
    assert_eq!(series["metric"]["room"], "lab");
    let values = series["values"].as_array().expect("values");
    assert_eq!(values.len(), 11);
    // Every minute is point 4k, so the gauge reads 20 + (4k mod 4) = 20.
    assert!(values.iter().all(|point| point[1] == "20"), "{values:?}");

    // histogram_quantile over the buckets: the median falls in the first bucket (half of the
    // observations are at most 0.1), interpolated to its upper bound.
    let (status, body) = get(
        &server,
        &format!(
            "/api/v1/query?query=histogram_quantile(0.5%2C%20sum%20by%20(le)%20(rate(latency_seconds_bucket%5B5m%5D)))&time={at}"
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let quantile = value_of(&body["data"]["result"][0]);
    assert!((quantile - 0.1).abs() < 1e-9, "{body}");

    // A scalar and a string come back in their own shapes.
    let (_, body) = get(&server, &format!("/api/v1/query?query=1%2B1&time={at}")).await;
    assert_eq!(body["data"]["resultType"], "scalar");
    assert_eq!(body["data"]["result"][1], "2");
    let (_, body) = get(
        &server,
        &format!("/api/v1/query?query=%22hello%22&time={at}"),
    )
    .await;
    assert_eq!(body["data"]["resultType"], "string");
    assert_eq!(body["data"]["result"][1], "hello");

    // A time given in RFC 3339 is the same instant.
    let (_, body) = get(
        &server,
        "/api/v1/query?query=count(http_requests_total)&time=2023-11-14T22:33:20Z",
    )
    .await;
    assert_eq!(body["data"]["result"][0]["value"][1], "3", "{body}");
    server.stop().await;
}

async fn series_label_names_and_values_follow_the_selectors(database: &TestDatabase) {
    let server = start(database, QuerySettings::default()).await;

    let (status, body) = get(
        &server,
        "/api/v1/series?match[]=http_requests_total%7Bjob%3D%22api%22%7D",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let series = body["data"].as_array().expect("a series list");
    assert_eq!(series.len(), 2, "{body}");
    assert!(
        series
            .iter()
            .all(|s| s["job"] == "api" && s["__name__"] == "http_requests_total")
    );

    let (_, body) = get(&server, "/api/v1/labels").await;
    let names: Vec<&str> = body["data"]
        .as_array()
        .expect("names")
        .iter()
        .filter_map(Json::as_str)
        .collect();
    assert_eq!(names, ["__name__", "instance", "job", "le", "room"]);

    let (_, body) = get(&server, "/api/v1/label/__name__/values").await;
    let names: Vec<&str> = body["data"]
        .as_array()
        .expect("names")
        .iter()
        .filter_map(Json::as_str)
        .collect();
    assert_eq!(
        names,
        [
            "http_requests_total",
            "latency_seconds_bucket",
            "temperature_celsius"
        ]
    );

    let (_, body) = get(
        &server,
        "/api/v1/label/instance/values?match[]=http_requests_total%7Bjob%3D~%22a.*%22%7D",
    )
    .await;
    let values: Vec<&str> = body["data"]
        .as_array()
        .expect("values")
        .iter()
        .filter_map(Json::as_str)
        .collect();
    assert_eq!(
        values,
        ["a", "b"],
        "a regex matcher is anchored at both ends: `a.*` matches api, not db"
    );

    // A time range without points selects nothing; limit cuts and says so.
    let (_, body) = get(
        &server,
        "/api/v1/series?match[]=temperature_celsius&start=1000&end=2000",
    )
    .await;
    assert_eq!(body["data"].as_array().map(Vec::len), Some(0), "{body}");
    let (_, body) = get(&server, "/api/v1/label/job/values?limit=1").await;
    assert_eq!(body["data"].as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(body["warnings"][0], "results truncated due to limit");

    let (_, body) = get(&server, "/api/v1/status/buildinfo").await;
    assert_eq!(body["data"]["version"], "2.42.0");
    let (_, body) = get(&server, "/api/v1/metadata").await;
    assert_eq!(body["data"]["temperature_celsius"][0]["type"], "unknown");
    server.stop().await;
}

async fn errors_carry_prometheus_error_types_and_status_codes(database: &TestDatabase) {
    let server = start(database, QuerySettings::default()).await;
    let at = seconds(BASE_MS + 20 * 60_000);
    let cases: Vec<(String, u16, &str, &str)> = vec![
        (
            format!("/api/v1/query?query=sum(rate(x%5B5m%5D)&time={at}"),
            400,
            "bad_data",
            "",
        ),
        (
            format!("/api/v1/query?query=no_such_function(x)&time={at}"),
            400,
            "bad_data",
            "no_such_function",
        ),
        (
            format!("/api/v1/query?query=x%7Ba%3D~%22(%22%7D&time={at}"),
            400,
            "bad_data",
            "",
        ),
        ("/api/v1/query?time=1".to_owned(), 400, "bad_data", "query"),
        (
            "/api/v1/query?query=up&time=yesterday".to_owned(),
            400,
            "bad_data",
            "cannot parse \"yesterday\" to a valid timestamp",
        ),
        (
            "/api/v1/query_range?query=up&start=100&end=10&step=1".to_owned(),
            400,
            "bad_data",
            "end timestamp must not be before start time",
        ),
        (
            "/api/v1/query_range?query=up&start=0&end=10&step=0".to_owned(),
            400,
            "bad_data",
            "zero or negative query resolution step widths are not accepted",
        ),
        (
            "/api/v1/query_range?query=up&start=0&end=100000&step=1".to_owned(),
            400,
            "bad_data",
            "exceeded maximum resolution of 11,000 points per timeseries",
        ),
        (
            "/api/v1/query_range?query=up%5B5m%5D&start=0&end=10&step=1".to_owned(),
            400,
            "bad_data",
            "invalid expression type \"matrix\" for range query",
        ),
        (
            format!(
                "/api/v1/query?query=http_requests_total%20%2B%20on(job)%20http_requests_total&time={at}"
            ),
            422,
            "execution",
            "many-to-many matching not allowed",
        ),
        (
            "/api/v1/series".to_owned(),
            400,
            "bad_data",
            "no match[] parameter provided",
        ),
        (
            "/api/v1/series?match[]=%7Bjob%3D~%22.*%22%7D".to_owned(),
            400,
            "bad_data",
            "at least one non-empty matcher",
        ),
    ];
    for (path, status, error_type, fragment) in cases {
        let (got, body) = get(&server, &path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert_eq!(body["status"], "error", "{path}: {body}");
        assert_eq!(body["errorType"], error_type, "{path}: {body}");
        let message = body["error"].as_str().unwrap_or("");
        assert!(
            message.contains(fragment),
            "{path}: {message:?} lacks {fragment:?}"
        );
    }
    server.stop().await;
}

async fn nan_values_read_back_as_nan(database: &TestDatabase) {
    let store = database.store().await;
    store_series(&store, "with_nan", &[("job", "x")], 3, |i| {
        if i == 1 { f64::NAN } else { i as f64 }
    })
    .await;
    let server = TestServer::builder(store)
        .module(QueryModule::new(QuerySettings::default()))
        .start()
        .await;
    let (_, body) = get(
        &server,
        &format!(
            "/api/v1/query_range?query=with_nan&start={}&end={}&step=15",
            seconds(BASE_MS),
            seconds(BASE_MS + 2 * STEP_MS)
        ),
    )
    .await;
    let values: Vec<&str> = body["data"]["result"][0]["values"]
        .as_array()
        .expect("values")
        .iter()
        .filter_map(|point| point[1].as_str())
        .collect();
    assert_eq!(values, ["0", "NaN", "2"], "{body}");
    server.stop().await;
}

async fn the_http_api_obeys_bearer_tokens(database: &TestDatabase) {
    let store = database.store().await;
    store_data_set(&store).await;
    let mut server_settings = pharos_runtime::ServerSettings::default();
    server_settings.auth.tokens = vec!["grafana:s3cret".to_owned()];
    let server = TestServer::builder(store)
        .module(QueryModule::new(QuerySettings::default()))
        .server(server_settings)
        .start()
        .await;
    let client = reqwest::Client::new();
    let url = server.http_url("/api/v1/query?query=count(http_requests_total)");
    let refused = client.get(&url).send().await.expect("answer");
    assert_eq!(refused.status().as_u16(), 401);
    assert_eq!(
        refused
            .headers()
            .get("www-authenticate")
            .map(|v| v.as_bytes()),
        Some(&b"Bearer"[..])
    );
    let wrong = client
        .get(&url)
        .bearer_auth("nope")
        .send()
        .await
        .expect("answer");
    assert_eq!(wrong.status().as_u16(), 401);
    let allowed = client
        .get(&url)
        .bearer_auth("s3cret")
        .send()
        .await
        .expect("answer");
    assert_eq!(allowed.status().as_u16(), 200);
    // Probes and scrapes stay open.
    for open in ["/metrics", "/health", "/ready"] {
        let response = client
            .get(server.http_url(open))
            .send()
            .await
            .expect("answer");
        assert_ne!(response.status().as_u16(), 401, "{open}");
    }
    server.stop().await;
}

async fn a_query_past_its_timeout_answers_a_timeout_error(database: &TestDatabase) {
    let store = database.store().await;
    // 40,000 points (a week at 15 s) take far longer than a millisecond to read.
    store_series(&store, "long_series", &[("job", "x")], 40_000, |i| i as f64).await;
    let server = TestServer::builder(store)
        .module(QueryModule::new(QuerySettings::default()))
        .start()
        .await;
    let at = seconds(BASE_MS + 40_000 * STEP_MS);
    let (status, body) = get(
        &server,
        &format!("/api/v1/query?query=count_over_time(long_series%5B8d%5D)&time={at}&timeout=1ms"),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["errorType"], "timeout", "{body}");
    // Without the short timeout the same query answers.
    let (status, body) = get(
        &server,
        &format!("/api/v1/query?query=count_over_time(long_series%5B8d%5D)&time={at}"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["result"][0]["value"][1], "40000", "{body}");
    server.stop().await;
}

async fn whole_hour_windows_read_the_hourly_rollups_with_the_same_answers(database: &TestDatabase) {
    const HOUR_MS: i64 = 3_600_000;
    // 2023-11-14T22:00:00Z, on the hour; three days of one-minute points.
    let start = 472_222 * HOUR_MS;
    let store = database.store().await;
    let minutes = 3 * 24 * 60;
    let stale = f64::from_bits(0x7ff0_0000_0000_0002);
    for (instance, nan_at) in [("a", 500), ("b", 2_000), ("c", usize::MAX)] {
        let mut new = NewSeries {
            key: SeriesKey {
                name: "rolled".to_owned(),
                labels_key: format!("instance={instance:?}"),
            },
            labels: vec![("instance".to_owned(), instance.to_owned())],
        };
        new.labels.sort();
        let ids = store
            .metrics()
            .create_series(std::slice::from_ref(&new))
            .await
            .expect("create");
        let id = ids[&new.key].0;
        let rows: Vec<PointRow> = (0..minutes)
            .filter(|i| !(1_000..1_100).contains(i))
            .map(|i| PointRow {
                series_id: id,
                time_us: (start + i as i64 * 60_000) * 1000,
                value: match i {
                    _ if i == nan_at => f64::NAN,
                    3_000 => stale,
                    _ => ((i * 37) % 101) as f64 - 50.0,
                },
            })
            .collect();
        let (first, last) = (rows[0].time_us, rows[rows.len() - 1].time_us);
        store
            .metrics()
            .ensure_partitions(first, last)
            .await
            .expect("partitions");
        for chunk in rows.chunks(2_000) {
            store
                .metrics()
                .insert_points(chunk, None)
                .await
                .expect("insert");
        }
    }
    // The first two days are rolled up; the third is still pending, summed from its points.
    let rolled = store
        .metrics()
        .roll_up((start + 48 * HOUR_MS) * 1000)
        .await
        .expect("roll up");
    assert!(rolled.hours >= 40, "{rolled:?}");

    let with_rollups = TestServer::builder(store.clone())
        .module(QueryModule::new(QuerySettings::default()))
        .start()
        .await;
    let without = TestServer::builder(store)
        .module(QueryModule::new(QuerySettings {
            hourly_rollups: false,
            ..QuerySettings::default()
        }))
        .start()
        .await;
    for query in [
        "sum_over_time(rolled[1h])",
        "count_over_time(rolled[3h])",
        "min_over_time(rolled[2h])",
        "max_over_time(rolled[1h] offset 1h)",
        "avg_over_time(rolled[6h])",
        "sum(avg_over_time(rolled[1h]))",
    ] {
        let path = format!(
            "/api/v1/query_range?query={}&start={}&end={}&step=1h",
            query
                .replace('[', "%5B")
                .replace(']', "%5D")
                .replace(' ', "%20"),
            (start + HOUR_MS) / 1000,
            (start + 72 * HOUR_MS) / 1000,
        );
        let (status, rolled) = get(&with_rollups, &path).await;
        assert_eq!(status, 200, "{query}: {rolled}");
        let (_, points) = get(&without, &path).await;
        assert!(
            rolled["warnings"][0]
                .as_str()
                .is_some_and(|w| w.contains("hourly rollups")),
            "{query} says it read the rollups: {rolled}"
        );
        assert!(points.get("warnings").is_none(), "{query}: {points}");
        let (expected, actual) = (&points["data"]["result"], &rolled["data"]["result"]);
        let expected = expected.as_array().expect("series");
        let actual = actual.as_array().expect("series");
        assert_eq!(expected.len(), actual.len(), "{query}");
        for (e, a) in expected.iter().zip(actual) {
            assert_eq!(e["metric"], a["metric"], "{query}");
            let (e, a) = (
                e["values"].as_array().expect("values"),
                a["values"].as_array().expect("values"),
            );
            assert_eq!(e.len(), a.len(), "{query}");
            for (p, q) in e.iter().zip(a) {
                assert_eq!(p[0], q[0], "{query}");
                let (p, q): (f64, f64) = (
                    p[1].as_str().and_then(|v| v.parse().ok()).expect("a value"),
                    q[1].as_str().and_then(|v| v.parse().ok()).expect("a value"),
                );
                let same = (p.is_nan() && q.is_nan()) || (p - q).abs() <= 1e-9 * p.abs().max(1.0);
                assert!(same, "{query}: {p} from the points, {q} from the rollups");
            }
        }
    }
    with_rollups.stop().await;
    without.stop().await;
}
