//! Webhooks through the running server, on the backend under test: every
//! delivery verified by a receiver that uses the `standardwebhooks`
//! package (Standard Webhooks' Python library, not our code), retries with
//! the same id, unsubscribing, secret rotation, the delivery log, and the
//! URLs refused for SSRF.

use std::process::Stdio;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::{TestApp, expect_error, expect_status};

/// `local-stack/checks/webhook_receiver.py` on a free loopback port,
/// killed (by its PID) when dropped.
struct Receiver {
    base: String,
    _child: Child,
}

/// The Python with `standardwebhooks`: `SHOP_TEST_PYTHON` (the test
/// script's venv) or `python3`. Without it the test is skipped with a note,
/// except under `CI=true`, where that is a failure.
async fn receiver() -> Option<Receiver> {
    let python = std::env::var("SHOP_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let usable =
        Command::new(&python).args(["-c", "import standardwebhooks"]).status().await.is_ok_and(|s| s.success());
    if !usable {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{python} cannot import standardwebhooks (run local-stack/test-all.sh)"
        );
        eprintln!("note: {python} has no standardwebhooks; skipping (run local-stack/test-all.sh)");
        return None;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/checks/webhook_receiver.py");
    let mut child = Command::new(&python)
        .arg(script)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start the receiver");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("receiver starts")
        .unwrap()
        .unwrap();
    let port = line.strip_prefix("listening ").expect("`listening <port>`");
    Some(Receiver { base: format!("http://127.0.0.1:{port}"), _child: child })
}

impl Receiver {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Verifies deliveries to `path` with each of `secrets`.
    async fn verify_with(&self, path: &str, secrets: &[&str]) {
        let response = reqwest::Client::new()
            .post(self.url("/_secrets"))
            .json(&json!({"path": path, "secrets": secrets}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }

    async fn received(&self, path: &str) -> Vec<Value> {
        let all: Vec<Value> = reqwest::get(self.url("/_received")).await.unwrap().json().await.unwrap();
        all.into_iter().filter(|r| r["path"] == path).collect()
    }

    /// Waits (up to 30 s) until `path` has received `count` requests.
    async fn wait_for(&self, path: &str, count: usize) -> Vec<Value> {
        for _ in 0..300 {
            let received = self.received(path).await;
            if received.len() >= count {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{path}: fewer than {count} deliveries in 30 s: {:#?}", self.received(path).await);
    }
}

const FAST_RETRIES: &[(&str, &str)] =
    &[("WEBHOOK_ALLOW_INSECURE_URLS", "true"), ("WEBHOOK_RETRY_SCHEDULE_SECONDS", "1,1")];

async fn subscribe(app: &TestApp, admin: &str, url: &str, events: Value) -> Value {
    let response = app
        .request(Method::POST, "/api/webhooks")
        .bearer_auth(admin)
        .json(&json!({"url": url, "events": events, "description": "tests"}))
        .send()
        .await
        .unwrap();
    expect_status(response, StatusCode::CREATED).await
}

async fn deliveries(app: &TestApp, admin: &str, id: &str) -> Vec<Value> {
    let path = format!("/api/webhooks/{id}/deliveries?limit=100");
    let page =
        expect_status(app.request(Method::GET, &path).bearer_auth(admin).send().await.unwrap(), StatusCode::OK).await;
    page["items"].as_array().unwrap().clone()
}

/// The delivery log of `id` once it has `count` attempts (up to 15 s).
async fn wait_for_log(app: &TestApp, admin: &str, id: &str, count: usize) -> Vec<Value> {
    for _ in 0..150 {
        let log = deliveries(app, admin, id).await;
        if log.len() >= count {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{id}: fewer than {count} logged attempts: {:#?}", deliveries(app, admin, id).await);
}

#[tokio::test]
async fn a_delivery_refused_once_comes_again_with_the_same_id_and_a_valid_signature() {
    let Some(receiver) = receiver().await else { return };
    let app = TestApp::spawn_with(FAST_RETRIES).await;
    let (admin, _) = app.signed_up_admin().await;
    let (customer, _) = app.signed_up_customer().await;
    let hook =
        subscribe(&app, &admin, &receiver.url("/flaky/orders"), json!(["category.created", "order.placed"])).await;
    let secret = hook["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"));
    receiver.verify_with("/flaky/orders", &[secret]).await;

    expect_status(app.create_category(&admin, "Garden").await, StatusCode::CREATED).await;
    let product = app.product(&admin, "Rake", "Garden", 10.0, 6).await;
    let order = json!({"items": [{"productId": product["id"], "quantity": 2}]});
    expect_status(app.place_order(&customer, order).await, StatusCode::CREATED).await;

    let received = receiver.wait_for("/flaky/orders", 4).await;
    let mut by_id: std::collections::BTreeMap<String, Vec<&Value>> = Default::default();
    for request in &received {
        assert_eq!(request["verified"], json!([0]), "verified by standardwebhooks: {request:#}");
        assert_eq!(request["id"], request["body"]["id"], "webhook-id is the event id");
        by_id.entry(request["id"].as_str().unwrap().to_owned()).or_default().push(request);
    }
    let mut types: Vec<&str> = by_id.values().map(|r| r[0]["body"]["type"].as_str().unwrap()).collect();
    types.sort();
    assert_eq!(types, vec!["category.created", "order.placed"], "only the subscribed types");
    for attempts in by_id.values() {
        let answered: Vec<(u64, u64)> =
            attempts.iter().map(|r| (r["attempt"].as_u64().unwrap(), r["status"].as_u64().unwrap())).collect();
        assert_eq!(answered, vec![(1, 500), (2, 200)], "refused once, then accepted");
        assert_eq!(attempts[0]["body"], attempts[1]["body"], "the same event on the retry");
    }

    let log = wait_for_log(&app, &admin, hook["id"].as_str().unwrap(), 4).await;
    let mut states: Vec<(String, u64, u64, bool)> = log
        .iter()
        .map(|a| {
            (
                a["state"].as_str().unwrap().to_owned(),
                a["attempt"].as_u64().unwrap(),
                a["status"].as_u64().unwrap(),
                a["nextRetryAt"].is_string(),
            )
        })
        .collect();
    states.sort();
    assert_eq!(
        states,
        vec![
            ("delivered".into(), 2, 200, false),
            ("delivered".into(), 2, 200, false),
            ("retrying".into(), 1, 500, true),
            ("retrying".into(), 1, 500, true)
        ]
    );
    let times: Vec<&str> = log.iter().map(|a| a["attemptedAt"].as_str().unwrap()).collect();
    let mut newest_first = times.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, newest_first, "the log is newest first");
}

#[tokio::test]
async fn a_receiver_that_keeps_failing_or_redirects_ends_failed_in_the_log() {
    let Some(receiver) = receiver().await else { return };
    let app = TestApp::spawn_with(FAST_RETRIES).await;
    let (admin, _) = app.signed_up_admin().await;
    let down = subscribe(&app, &admin, &receiver.url("/down/a"), json!(["category.created"])).await;
    // One type each: on DynamoDB the stream may bring the admin's
    // registration after the subscriptions were made.
    let redirect = subscribe(&app, &admin, &receiver.url("/redirect/a"), json!(["category.created"])).await;
    expect_status(app.create_category(&admin, "Garden").await, StatusCode::CREATED).await;

    let received = receiver.wait_for("/down/a", 3).await;
    assert_eq!(received.iter().map(|r| r["attempt"].as_u64().unwrap()).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert!(received.iter().all(|r| r["id"] == received[0]["id"]));
    let log = wait_for_log(&app, &admin, down["id"].as_str().unwrap(), 3).await;
    assert_eq!(log[0]["state"], "failed", "the last of the schedule's 3 attempts: {log:#?}");
    assert_eq!(log[0]["attempt"], 3);
    assert!(log[0]["nextRetryAt"].is_null());
    assert!(log[1..].iter().all(|a| a["state"] == "retrying" && a["status"] == 500));

    let log = wait_for_log(&app, &admin, redirect["id"].as_str().unwrap(), 3).await;
    assert!(log.iter().all(|a| a["status"] == 307), "a 3xx is a failed attempt: {log:#?}");
    assert_eq!(log[0]["state"], "failed");
    assert!(receiver.received("/ok/a").await.is_empty(), "the redirect was not followed");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.received("/down/a").await.len(), 3, "nothing after the last attempt");
}

#[tokio::test]
async fn unsubscribing_stops_deliveries_pending_retries_included() {
    let Some(receiver) = receiver().await else { return };
    let app =
        TestApp::spawn_with(&[("WEBHOOK_ALLOW_INSECURE_URLS", "true"), ("WEBHOOK_RETRY_SCHEDULE_SECONDS", "2,2")])
            .await;
    let (admin, _) = app.signed_up_admin().await;
    // One type only: on DynamoDB the stream may bring the admin's
    // registration after the subscription was made.
    let hook = subscribe(&app, &admin, &receiver.url("/down/gone"), json!(["category.created"])).await;
    let id = hook["id"].as_str().unwrap();
    expect_status(app.create_category(&admin, "Garden").await, StatusCode::CREATED).await;
    receiver.wait_for("/down/gone", 1).await;
    let path = format!("/api/webhooks/{id}");
    let response = app.request(Method::DELETE, &path).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    expect_status(app.create_category(&admin, "Kitchen").await, StatusCode::CREATED).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let received = receiver.received("/down/gone").await;
    assert_eq!(received.len(), 1, "no retry and no new event after the unsubscribe: {received:#?}");
    expect_error(app.request(Method::GET, &path).bearer_auth(&admin).send().await.unwrap(), StatusCode::NOT_FOUND)
        .await;
    let log = app.request(Method::GET, &format!("{path}/deliveries")).bearer_auth(&admin).send().await.unwrap();
    expect_error(log, StatusCode::NOT_FOUND).await;
    expect_error(app.request(Method::DELETE, &path).bearer_auth(&admin).send().await.unwrap(), StatusCode::NOT_FOUND)
        .await;
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_old_one() {
    let Some(receiver) = receiver().await else { return };
    let app = TestApp::spawn_with(FAST_RETRIES).await;
    let (admin, _) = app.signed_up_admin().await;
    let hook = subscribe(&app, &admin, &receiver.url("/ok/rotated"), json!(["category.created"])).await;
    let id = hook["id"].as_str().unwrap();
    let path = format!("/api/webhooks/{id}/rotate-secret");
    let rotated =
        expect_status(app.request(Method::POST, &path).bearer_auth(&admin).send().await.unwrap(), StatusCode::OK).await;
    let (old, new) = (hook["secret"].as_str().unwrap(), rotated["secret"].as_str().unwrap());
    assert!(new.starts_with("whsec_") && new != old);
    let shown = expect_status(
        app.request(Method::GET, &format!("/api/webhooks/{id}")).bearer_auth(&admin).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert!(shown.get("secret").is_none(), "never shown again: {shown}");
    let until = time::OffsetDateTime::parse(
        shown["previousSecretExpiresAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let overlap = until - time::OffsetDateTime::now_utc();
    assert!(overlap > time::Duration::hours(23) && overlap <= time::Duration::hours(24), "{overlap}");

    receiver.verify_with("/ok/rotated", &[old, new]).await;
    expect_status(app.create_category(&admin, "Garden").await, StatusCode::CREATED).await;
    let received = receiver.wait_for("/ok/rotated", 1).await;
    assert_eq!(
        received[0]["verified"],
        json!([0, 1]),
        "verified with the old secret and with the new: {:#}",
        received[0]
    );
    assert_eq!(received[0]["signature"].as_str().unwrap().split(' ').count(), 2);
}

#[tokio::test]
async fn subscriptions_are_admin_only_checked_capped_and_never_show_their_secret() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.signed_up_admin().await;
    let (customer, _) = app.signed_up_customer().await;
    let create = |token: Option<&str>, body: Value| {
        let request = app.request(Method::POST, "/api/webhooks").json(&body);
        let request = match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        async move { request.send().await.unwrap() }
    };
    let good = json!({"url": "https://93.184.215.14/hooks", "events": ["order.placed"]});
    expect_error(create(None, good.clone()).await, StatusCode::UNAUTHORIZED).await;
    expect_error(create(Some(&customer), good.clone()).await, StatusCode::FORBIDDEN).await;

    for url in [
        "http://hooks.example.com/shop",
        "http://127.0.0.1:8080/hook",
        "https://127.0.0.1/hook",
        "https://[::1]/hook",
        "https://localhost/hook",
        "https://10.0.0.5/hook",
        "https://172.16.8.1/hook",
        "https://192.168.1.20/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fe80::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://0.0.0.0/hook",
        "https://intranet/hook",
        "https://does-not-resolve.invalid/hook",
        "ftp://hooks.example.com/",
        "not a url",
        "",
    ] {
        let body =
            expect_error(create(Some(&admin), json!({"url": url, "events": ["*"]})).await, StatusCode::BAD_REQUEST)
                .await;
        assert!(body["details"]["url"].is_string(), "{url}: {body}");
    }
    for events in [json!([]), json!(["order.shipped"]), json!(["*", "order.placed"])] {
        let body = expect_error(
            create(Some(&admin), json!({"url": "https://93.184.215.14/", "events": events})).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(body["details"]["events"].is_string(), "{events}: {body}");
    }
    expect_error(
        create(Some(&admin), json!({"url": "https://93.184.215.14/", "events": ["*"], "secret": "mine"})).await,
        StatusCode::BAD_REQUEST,
    )
    .await;

    let mut ids = Vec::new();
    for n in 0..25 {
        let made = expect_status(
            create(Some(&admin), json!({"url": format!("https://93.184.215.14/hooks/{n}"), "events": ["*"]})).await,
            StatusCode::CREATED,
        )
        .await;
        ids.push(made["id"].as_str().unwrap().to_owned());
    }
    let refused = expect_error(create(Some(&admin), good.clone()).await, StatusCode::BAD_REQUEST).await;
    assert!(refused["details"]["url"].as_str().unwrap().contains("25"), "{refused}");

    let mut listed = Vec::new();
    let mut query = "limit=10".to_owned();
    loop {
        let page = expect_status(
            app.request(Method::GET, &format!("/api/webhooks?{query}")).bearer_auth(&admin).send().await.unwrap(),
            StatusCode::OK,
        )
        .await;
        for item in page["items"].as_array().unwrap() {
            assert!(item.get("secret").is_none(), "{item}");
            listed.push(item["id"].as_str().unwrap().to_owned());
        }
        match page["nextCursor"].as_str() {
            Some(cursor) => query = format!("limit=10&cursor={cursor}"),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(listed, ids, "every subscription once, newest first");
    expect_error(
        app.request(Method::GET, "/api/webhooks?limit=0").bearer_auth(&admin).send().await.unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    expect_error(
        app.request(Method::GET, "/api/webhooks?cursor=forged").bearer_auth(&admin).send().await.unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    for path in [
        "/api/webhooks/not-an-id",
        "/api/webhooks/01a21838-2309-766f-8c27-a35b464ef22c",
        "/api/webhooks/01a21838-2309-766f-8c27-a35b464ef22c/deliveries",
    ] {
        expect_error(app.request(Method::GET, path).bearer_auth(&admin).send().await.unwrap(), StatusCode::NOT_FOUND)
            .await;
    }
    let rotate = app
        .request(Method::POST, &format!("/api/webhooks/{}/rotate-secret", ids[0]))
        .bearer_auth(&customer)
        .send()
        .await
        .unwrap();
    expect_error(rotate, StatusCode::FORBIDDEN).await;
}
