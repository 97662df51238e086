//! The alert repository on both backends: rule state, alerts and silences round trip and are
//! replaced by upserts; the outbox life cycle (enqueue once, pending oldest first, delivered with
//! its notification-log entry in one step, dead letters); delivery attempts; the leader lease
//! (one holder at a time, taken over after expiry, renewed by its holder); rule groups and
//! acknowledgements.

use pharos_store::StoreError;
use pharos_store::control::alerts::{
    AcknowledgementRow, AlertRow, AttemptRow, NotificationLogRow, OutboxLogRow, OutboxRow,
    RuleGroupRow, SilenceRow,
};
use pharos_store::testing::TestDatabase;

pharos_store::backend_tests!(
    rule_state_round_trips_and_is_replaced,
    alerts_round_trip_are_replaced_and_deleted,
    silences_round_trip_and_ended_ones_are_pruned,
    outbox_life_cycle_writes_the_notification_log,
    a_summary_writes_the_log_of_every_group_it_speaks_for,
    outbox_dead_letters_and_pruning,
    marking_an_unknown_key_is_not_found,
    notification_log_expires,
    attempts_are_newest_first_filtered_and_pruned,
    lease_has_one_holder_until_it_expires,
    lease_contenders_never_both_win,
    rule_groups_are_put_listed_and_deleted,
    acknowledgements_are_put_loaded_and_deleted,
);

fn alert(fingerprint: &str, starts_at_ms: i64) -> AlertRow {
    AlertRow {
        fingerprint: fingerprint.into(),
        labels_json: format!(r#"{{"alertname":"{fingerprint}"}}"#),
        annotations_json: r#"{"summary":"down"}"#.into(),
        starts_at_ms,
        ends_at_ms: starts_at_ms + 300_000,
        generator_url: "http://pharos/graph".into(),
        updated_at_ms: starts_at_ms,
        timeout: true,
    }
}

fn silence(id: &str, ends_at_ms: i64) -> SilenceRow {
    SilenceRow {
        id: id.into(),
        matchers_json: r#"[{"name":"job","value":"api","type":"="}]"#.into(),
        starts_at_ms: 1_000,
        ends_at_ms,
        updated_at_ms: 1_000,
        created_by: "ops".into(),
        comment: "maintenance".into(),
    }
}

fn outbox(key: &str, created_at_ms: i64) -> OutboxRow {
    OutboxRow {
        idempotency_key: key.into(),
        group_key: "{}:{alertname=\"Down\"}".into(),
        integration: "webhook/0".into(),
        receiver: "team".into(),
        url: "http://127.0.0.1:9/hook".into(),
        body: format!(r#"{{"key":"{key}"}}"#),
        log_firing_json: r#"["f1"]"#.into(),
        log_resolved_json: "[]".into(),
        log_expires_at_ms: created_at_ms + 3_600_000,
        created_at_ms,
    }
}

fn attempt(key: &str, attempt: i32, at_ms: i64, http_status: Option<i32>) -> AttemptRow {
    AttemptRow {
        idempotency_key: key.into(),
        attempt,
        at_ms,
        duration_ms: 12,
        outcome: if http_status == Some(200) {
            "delivered".into()
        } else {
            "failed".into()
        },
        http_status,
        error: if http_status.is_none() {
            "connection refused".into()
        } else {
            String::new()
        },
    }
}

async fn rule_state_round_trips_and_is_replaced(database: &TestDatabase) {
    let alerts = database.store().await.alerts();
    assert!(alerts.load_rule_states().await.expect("load").is_empty());
    alerts
        .save_rule_state("b/group", r#"{"v":1}"#, 10)
        .await
        .expect("save");
    alerts
        .save_rule_state("a/group", r#"{"v":1}"#, 10)
        .await
        .expect("save");
    alerts
        .save_rule_state("b/group", r#"{"v":2}"#, 20)
        .await
        .expect("replace");
    assert_eq!(
        alerts.load_rule_states().await.expect("load"),
        [
            ("a/group".to_string(), r#"{"v":1}"#.to_string()),
            ("b/group".to_string(), r#"{"v":2}"#.to_string()),
        ]
    );
    alerts.delete_rule_state("a/group").await.expect("delete");
    alerts
        .delete_rule_state("missing")
        .await
        .expect("delete missing");
    assert_eq!(
        alerts.load_rule_states().await.expect("load"),
        [("b/group".to_string(), r#"{"v":2}"#.to_string())]
    );
}

async fn alerts_round_trip_are_replaced_and_deleted(database: &TestDatabase) {
    let alerts = database.store().await.alerts();
    alerts.upsert_alerts(&[]).await.expect("empty upsert");
    assert!(alerts.load_alerts().await.expect("load").is_empty());

    let first = alert("f1", 1_000);
    let second = AlertRow {
        timeout: false,
        ..alert("f2", 2_000)
    };
    alerts
        .upsert_alerts(&[second.clone(), first.clone()])
        .await
        .expect("upsert");
    assert_eq!(
        alerts.load_alerts().await.expect("load"),
        [first.clone(), second.clone()]
    );

    let resolved = AlertRow {
        ends_at_ms: 9_000,
        updated_at_ms: 9_000,
        annotations_json: r#"{"summary":"back"}"#.into(),
        timeout: false,
        ..first.clone()
    };
    alerts
        .upsert_alerts(std::slice::from_ref(&resolved))
        .await
        .expect("replace");
    assert_eq!(
        alerts.load_alerts().await.expect("load"),
        [resolved, second.clone()]
    );

    assert_eq!(alerts.delete_alerts(&[]).await.expect("delete none"), 0);
    let many: Vec<String> = ["f1", "missing", "f1"]
        .into_iter()
        .map(String::from)
        .chain((0..50).map(|i| format!("other{i}")))
        .collect();
    assert_eq!(alerts.delete_alerts(&many).await.expect("delete"), 1);
    assert_eq!(alerts.load_alerts().await.expect("load"), [second]);
    assert_eq!(
        alerts.delete_alerts(&["f2".into()]).await.expect("delete"),
        1
    );
    assert!(alerts.load_alerts().await.expect("load").is_empty());
}

async fn silences_round_trip_and_ended_ones_are_pruned(database: &TestDatabase) {
    let alerts = database.store().await.alerts();
    alerts.upsert_silences(&[]).await.expect("empty upsert");
    let early = silence("s1", 5_000);
    let late = silence("s2", 50_000);
    alerts
        .upsert_silences(&[late.clone(), early.clone()])
        .await
        .expect("upsert");
    assert_eq!(
        alerts.load_silences().await.expect("load"),
        [early.clone(), late.clone()]
    );

    let extended = SilenceRow {
        ends_at_ms: 8_000,
        updated_at_ms: 2_000,
        comment: "longer".into(),
        created_by: "someone else".into(),
        matchers_json: "[]".into(),
        ..early
    };
    alerts
        .upsert_silences(std::slice::from_ref(&extended))
        .await
        .expect("replace");
    assert_eq!(
        alerts.load_silences().await.expect("load"),
        [extended, late.clone()]
    );

    assert_eq!(
        alerts
            .delete_silences_ended_before(8_000)
            .await
            .expect("prune"),
        0
    );
    assert_eq!(
        alerts
            .delete_silences_ended_before(8_001)
            .await
            .expect("prune"),
        1
    );
    assert_eq!(alerts.load_silences().await.expect("load"), [late]);
}

async fn outbox_life_cycle_writes_the_notification_log(database: &TestDatabase) {
    let alerts = database.store().await.alerts();
    let older = outbox("k1", 1_000);
    // The same group and integration, now resolved.
    let newer = OutboxRow {
        log_firing_json: "[]".into(),
        log_resolved_json: r#"["f1"]"#.into(),
        ..outbox("k2", 2_000)
    };
    alerts.enqueue(&newer, &[]).await.expect("enqueue");
    alerts.enqueue(&older, &[]).await.expect("enqueue");
    // A second enqueue of the same key (a restart re-planning it) changes nothing.
    let again = OutboxRow {
        body: "changed".into(),
        created_at_ms: 500,
        ..older.clone()
    };
    alerts.enqueue(&again, &[]).await.expect("enqueue again");
    assert_eq!(
        alerts.pending_outbox().await.expect("pending"),
        [older.clone(), newer.clone()]
    );
    assert!(
        alerts
            .load_notification_log()
            .await
            .expect("log")
            .is_empty()
    );

    alerts.mark_delivered("k1", 1_500).await.expect("delivered");
    assert_eq!(
        alerts.pending_outbox().await.expect("pending"),
        std::slice::from_ref(&newer)
    );
    let entry = NotificationLogRow {
        group_key: older.group_key.clone(),
        integration: older.integration.clone(),
        firing_json: older.log_firing_json.clone(),
        resolved_json: older.log_resolved_json.clone(),
        sent_at_ms: 1_500,
        expires_at_ms: older.log_expires_at_ms,
    };
    assert_eq!(
        alerts.load_notification_log().await.expect("log"),
        std::slice::from_ref(&entry)
    );

    // Delivered rows stay delivered: neither an enqueue nor a second mark changes them.
    alerts
        .enqueue(&older, &[])
        .await
        .expect("enqueue delivered");
    alerts
        .mark_delivered("k1", 9_999)
        .await
        .expect("delivered again");
    alerts.mark_dead("k1", "late", 9_999).await.expect("dead");
    assert_eq!(
        alerts.pending_outbox().await.expect("pending"),
        std::slice::from_ref(&newer)
    );
    assert_eq!(alerts.load_notification_log().await.expect("log"), [entry]);
    assert!(alerts.dead_letters(10).await.expect("dead").is_empty());

    // The next delivery for the same group and integration replaces the entry.
    alerts.mark_delivered("k2", 2_500).await.expect("delivered");
    assert!(alerts.pending_outbox().await.expect("pending").is_empty());
    assert_eq!(
        alerts.load_notification_log().await.expect("log"),
        [NotificationLogRow {
            group_key: newer.group_key,
            integration: newer.integration,
            firing_json: "[]".into(),
            resolved_json: r#"["f1"]"#.into(),
            sent_at_ms: 2_500,
            expires_at_ms: newer.log_expires_at_ms,
        }]
    );
}

async fn a_summary_writes_the_log_of_every_group_it_speaks_for(database: &TestDatabase) {
    let alerts = database.store().await.alerts();
    let summary = OutboxRow {
        group_key: "{}:rate-limited".into(),
        ..outbox("s1", 1_000)
    };
    let held = |group: &str, firing: &str| OutboxLogRow {
        group_key: group.into(),
        firing_json: firing.into(),
        resolved_json: "[]".into(),
    };
    let also = [
        held("{}:{a=\"1\"}", r#"["f1"]"#),
        held("{}:{a=\"2\"}", r#"["f2"]"#),
    ];
    alerts.enqueue(&summary, &also).await.expect("enqueue");
    // Nothing is recorded before the delivery.
    assert!(
        alerts
            .load_notification_log()
            .await
            .expect("log")
            .is_empty()
    );

    alerts.mark_delivered("s1", 1_500).await.expect("delivered");
    // Sorted here: PostgreSQL's collation may order punctuation differently.
    let mut log = alerts.load_notification_log().await.expect("log");
    log.sort_by(|a, b| a.group_key.cmp(&b.group_key));
    let entry = |group: &str, firing: &str| NotificationLogRow {
        group_key: group.into(),
        integration: summary.integration.clone(),
        firing_json: firing.into(),
        resolved_json: "[]".into(),
        sent_at_ms: 1_500,
        expires_at_ms: summary.log_expires_at_ms,
    };
    assert_eq!(
        log,
        [
            entry("{}:rate-limited", &summary.log_firing_json),
            entry("{}:{a=\"1\"}", r#"["f1"]"#),
            entry("{}:{a=\"2\"}", r#"["f2"]"#),
        ]
    );
    // Pruning the finished row drops what it carried; a second prune finds nothing.
    assert_eq!(
        alerts
            .delete_outbox_finished_before(2_000)
            .await
            .expect("prune"),
        1
    );
    assert_eq!(
        alerts
            .delete_outbox_finished_before(2_000)
            .await
            .expect("prune"),
        0
    );
}

async fn outbox_dead_letters_and_pruning(database: &TestDatabase) {
    let alerts = database.store().await.alerts();
    for (key, created) in [("d1", 1_000), ("d2", 2_000), ("ok", 3_000), ("p", 4_000)] {
        alerts
            .enqueue(&outbox(key, created), &[])
            .await
            .expect("enqueue");
    }
    alerts
        .mark_dead("d1", "HTTP 500", 10_000)
        .await
        .expect("dead");
    alerts
        .mark_dead("d2", "connection refused", 20_000)
        .await
        .expect("dead");
    alerts
        .mark_delivered("ok", 15_000)
        .await
        .expect("delivered");
    // A dead letter is not delivered afterwards.
    alerts.mark_delivered("d1", 30_000).await.expect("no-op");

    let dead = alerts.dead_letters(10).await.expect("dead letters");
    assert_eq!(dead.len(), 2);
    assert_eq!(dead[0].outbox, outbox("d2", 2_000));
    assert_eq!(
        (dead[0].failed_at_ms, dead[0].last_error.as_str()),
        (20_000, "connection refused")
    );
    assert_eq!(dead[1].outbox, outbox("d1", 1_000));
    assert_eq!(
        (dead[1].failed_at_ms, dead[1].last_error.as_str()),
        (10_000, "HTTP 500")
    );
    assert_eq!(alerts.dead_letters(1).await.expect("limited").len(), 1);
    assert!(alerts.dead_letters(0).await.expect("none").is_empty());
    // Only the delivered row wrote the log.
    let log = alerts.load_notification_log().await.expect("log");
    assert_eq!(
        log.iter().map(|entry| entry.sent_at_ms).collect::<Vec<_>>(),
        [15_000]
    );

    // Pending rows are never pruned, however old.
    assert_eq!(
        alerts
            .delete_outbox_finished_before(15_001)
            .await
            .expect("prune"),
        2
    );
    assert_eq!(
        alerts
            .dead_letters(10)
            .await
            .expect("dead letters")
            .iter()
            .map(|row| row.outbox.idempotency_key.as_str())
            .collect::<Vec<_>>(),
        ["d2"]
    );
    assert_eq!(
        alerts
            .delete_outbox_finished_before(i64::MAX)
            .await
            .expect("prune"),
        1
    );
    assert_eq!(
        alerts.pending_outbox().await.expect("pending"),
        [outbox("p", 4_000)]
    );
}

async fn marking_an_unknown_key_is_not_found(database: &TestDatabase) {
    let alerts = database.store().await.alerts();
    assert!(matches!(
        alerts.mark_delivered("nope", 1).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        alerts.mark_dead("nope", "error", 1).await,
        Err(StoreError::NotFound)
    ));
    assert!(
        alerts
            .load_notification_log()
            .await
            .expect("log")
            .is_empty()
    );
}

async fn notification_log_expires(database: &TestDatabase) {
    let alerts = database.store().await.alerts();
    let short = OutboxRow {
        group_key: "g1".into(),
        log_expires_at_ms: 5_000,
        ..outbox("k1", 1_000)
    };
    let long = OutboxRow {
        group_key: "g2".into(),
        log_expires_at_ms: 50_000,
        ..outbox("k2", 1_000)
    };
    for row in [&short, &long] {
        alerts.enqueue(row, &[]).await.expect("enqueue");
        alerts
            .mark_delivered(&row.idempotency_key, 2_000)
            .await
            .expect("delivered");
    }
    assert_eq!(alerts.load_notification_log().await.expect("log").len(), 2);
    assert_eq!(
        alerts
            .delete_notification_log_expired(4_999)
            .await
            .expect("expire"),
        0
    );
    assert_eq!(
        alerts
            .delete_notification_log_expired(5_000)
            .await
            .expect("expire"),
        1
    );
    let left = alerts.load_notification_log().await.expect("log");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].group_key, "g2");
}

async fn attempts_are_newest_first_filtered_and_pruned(database: &TestDatabase) {
    let alerts = database.store().await.alerts();
    let rows = [
        attempt("k1", 1, 1_000, None),
        attempt("k2", 1, 1_500, Some(503)),
        attempt("k1", 2, 2_000, Some(500)),
        attempt("k1", 3, 3_000, Some(200)),
    ];
    for row in &rows {
        alerts.record_attempt(row).await.expect("record");
    }
    assert_eq!(
        alerts.attempts(None, 10).await.expect("all"),
        [
            rows[3].clone(),
            rows[2].clone(),
            rows[1].clone(),
            rows[0].clone()
        ]
    );
    assert_eq!(
        alerts.attempts(Some("k1"), 2).await.expect("of k1"),
        [rows[3].clone(), rows[2].clone()]
    );
    assert_eq!(
        alerts.attempts(Some("k2"), 10).await.expect("of k2"),
        [rows[1].clone()]
    );
    assert!(
        alerts
            .attempts(Some("missing"), 10)
            .await
            .expect("none")
            .is_empty()
    );
    assert_eq!(
        alerts.delete_attempts_before(2_000).await.expect("prune"),
        2
    );
    assert_eq!(
        alerts.attempts(None, 10).await.expect("all"),
        [rows[3].clone(), rows[2].clone()]
    );
}

async fn lease_has_one_holder_until_it_expires(database: &TestDatabase) {
    let alerts = database.store().await.alerts();
    assert_eq!(
        alerts.lease_holder("leader", 0).await.expect("holder"),
        None
    );

    assert!(
        alerts
            .try_acquire_lease("leader", "a", 1_000, 10_000)
            .await
            .expect("a takes it")
    );
    assert!(
        !alerts
            .try_acquire_lease("leader", "b", 2_000, 10_000)
            .await
            .expect("b is refused")
    );
    assert_eq!(
        alerts.lease_holder("leader", 2_000).await.expect("holder"),
        Some("a".into())
    );
    // Another lease name is independent.
    assert!(
        alerts
            .try_acquire_lease("other", "b", 2_000, 10_000)
            .await
            .expect("b takes other")
    );

    // The holder renews: the lease now runs until 19,000.
    assert!(
        alerts
            .try_acquire_lease("leader", "a", 9_000, 10_000)
            .await
            .expect("a renews")
    );
    assert!(
        !alerts
            .try_acquire_lease("leader", "b", 18_999, 10_000)
            .await
            .expect("b is refused before expiry")
    );
    assert_eq!(
        alerts.lease_holder("leader", 18_999).await.expect("holder"),
        Some("a".into())
    );
    assert_eq!(
        alerts.lease_holder("leader", 19_000).await.expect("holder"),
        None
    );

    // Expired: b takes it over, and a cannot take it back.
    assert!(
        alerts
            .try_acquire_lease("leader", "b", 19_000, 10_000)
            .await
            .expect("b takes over")
    );
    assert!(
        !alerts
            .try_acquire_lease("leader", "a", 19_001, 10_000)
            .await
            .expect("a is refused")
    );
    assert_eq!(
        alerts.lease_holder("leader", 20_000).await.expect("holder"),
        Some("b".into())
    );

    // Only the holder releases it.
    alerts.release_lease("leader", "a").await.expect("release");
    assert_eq!(
        alerts.lease_holder("leader", 20_000).await.expect("holder"),
        Some("b".into())
    );
    alerts.release_lease("leader", "b").await.expect("release");
    assert_eq!(
        alerts.lease_holder("leader", 20_000).await.expect("holder"),
        None
    );
    assert!(
        alerts
            .try_acquire_lease("leader", "a", 20_000, 10_000)
            .await
            .expect("a takes the released lease")
    );
}

async fn lease_contenders_never_both_win(database: &TestDatabase) {
    let store = database.store().await;
    for round in 0..5_i64 {
        // Each round starts after the previous lease expired.
        let now = round * 100_000;
        let contenders: Vec<_> = (0..6)
            .map(|contender| {
                let alerts = store.alerts();
                tokio::spawn(async move {
                    alerts
                        .try_acquire_lease("leader", &format!("r{round}c{contender}"), now, 50_000)
                        .await
                })
            })
            .collect();
        let mut winners = 0;
        for contender in contenders {
            if contender.await.expect("join").expect("acquire") {
                winners += 1;
            }
        }
        assert_eq!(winners, 1, "round {round}");
        let holder = store
            .alerts()
            .lease_holder("leader", now)
            .await
            .expect("holder");
        assert!(holder.is_some_and(|holder| holder.starts_with(&format!("r{round}c"))));
    }
}

async fn rule_groups_are_put_listed_and_deleted(database: &TestDatabase) {
    let alerts = database.store().await.alerts();
    let group = |namespace: &str, name: &str, yaml: &str, at: i64| RuleGroupRow {
        namespace: namespace.into(),
        name: name.into(),
        yaml: yaml.into(),
        updated_at_ms: at,
    };
    let web_b = group("web", "b", "name: b\nrules: []\n", 1);
    let web_a = group("web", "a", "name: a\nrules: []\n", 2);
    let api_z = group("api", "z", "name: z\nrules: []\n", 3);
    for row in [&web_b, &web_a, &api_z] {
        alerts.put_rule_group(row).await.expect("put");
    }
    assert_eq!(
        alerts.list_rule_groups().await.expect("list"),
        [api_z.clone(), web_a.clone(), web_b.clone()]
    );

    let web_a2 = group("web", "a", "name: a\ninterval: 1m\nrules: []\n", 4);
    alerts.put_rule_group(&web_a2).await.expect("replace");
    assert_eq!(
        alerts.list_rule_groups().await.expect("list"),
        [api_z.clone(), web_a2, web_b.clone()]
    );

    assert!(alerts.delete_rule_group("web", "a").await.expect("delete"));
    assert!(
        !alerts
            .delete_rule_group("web", "a")
            .await
            .expect("delete again")
    );
    assert!(
        !alerts
            .delete_rule_group("api", "b")
            .await
            .expect("delete other name")
    );
    assert_eq!(
        alerts.list_rule_groups().await.expect("list"),
        [api_z, web_b]
    );
}

async fn acknowledgements_are_put_loaded_and_deleted(database: &TestDatabase) {
    let alerts = database.store().await.alerts();
    let ack = |fingerprint: &str, by: &str, at_ms: i64| AcknowledgementRow {
        fingerprint: fingerprint.into(),
        acknowledged_by: by.into(),
        comment: format!("looking at {fingerprint}"),
        at_ms,
    };
    alerts
        .put_acknowledgement(&ack("f2", "bob", 1))
        .await
        .expect("put");
    alerts
        .put_acknowledgement(&ack("f1", "ann", 2))
        .await
        .expect("put");
    assert_eq!(
        alerts.load_acknowledgements().await.expect("load"),
        [ack("f1", "ann", 2), ack("f2", "bob", 1)]
    );
    alerts
        .put_acknowledgement(&ack("f2", "carol", 3))
        .await
        .expect("replace");
    assert_eq!(
        alerts.load_acknowledgements().await.expect("load"),
        [ack("f1", "ann", 2), ack("f2", "carol", 3)]
    );
    assert_eq!(
        alerts
            .delete_acknowledgements(&[])
            .await
            .expect("delete none"),
        0
    );
    assert_eq!(
        alerts
            .delete_acknowledgements(&["f1".into(), "f3".into()])
            .await
            .expect("delete"),
        1
    );
    assert_eq!(
        alerts.load_acknowledgements().await.expect("load"),
        [ack("f2", "carol", 3)]
    );
}
