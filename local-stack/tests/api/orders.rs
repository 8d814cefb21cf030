//! Orders: reservation, idempotency, reading, the workflow, races and the
//! stock invariant.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{expect_error, expect_status, shop_with, shop_with_env, stock};

fn lines(lines: &[(&str, u64)]) -> Value {
    json!({ "items": lines.iter().map(|(id, q)| json!({"productId": id, "quantity": q})).collect::<Vec<_>>() })
}

#[tokio::test]
async fn an_order_takes_names_and_prices_from_the_catalog_and_totals_exactly() {
    let (app, _, ids) = shop_with(&[("Mug", 9.99, 10), ("Teapot", 0.1, 10)]).await;
    let (token, user) = app.signed_up_customer().await;
    let response = app.place_order(&token, lines(&[(&ids[0], 3), (&ids[1], 2), (&ids[0], 1)])).await;
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let order = expect_status(response, StatusCode::CREATED).await;
    assert_eq!(location, format!("/api/orders/{}", order["id"].as_str().unwrap()));
    assert_eq!(order["userId"], user["id"]);
    assert_eq!(order["status"], "pending");
    assert_eq!(order["totalAmount"], json!(40.16), "4 x 9.99 + 2 x 0.10, merged lines");
    assert_eq!(
        order["items"],
        json!([
            {"productId": ids[0], "productName": "Mug", "quantity": 4, "price": 9.99},
            {"productId": ids[1], "productName": "Teapot", "quantity": 2, "price": 0.1},
        ])
    );
    assert_eq!((stock(&app, &ids[0]).await, stock(&app, &ids[1]).await), (6, 8));
}

#[tokio::test]
async fn a_client_cannot_set_prices_or_order_for_someone_else() {
    let (app, _, ids) = shop_with(&[("Mug", 9.99, 10)]).await;
    let (token, user) = app.signed_up_customer().await;
    let (_, other) = app.signed_up_customer().await;
    let priced = json!({"items": [{"productId": ids[0], "quantity": 1, "price": 0.01}]});
    expect_error(app.place_order(&token, priced).await, StatusCode::BAD_REQUEST).await;
    let total = json!({"items": [{"productId": ids[0], "quantity": 1}], "totalAmount": 0.01});
    expect_error(app.place_order(&token, total).await, StatusCode::BAD_REQUEST).await;
    let for_other = json!({"items": [{"productId": ids[0], "quantity": 1}], "userId": other["id"]});
    expect_error(app.place_order(&token, for_other).await, StatusCode::FORBIDDEN).await;
    let for_self = json!({"items": [{"productId": ids[0], "quantity": 1}], "userId": user["id"]});
    expect_status(app.place_order(&token, for_self).await, StatusCode::CREATED).await;
    let anonymous = app.request(reqwest::Method::POST, "/api/orders").json(&lines(&[(&ids[0], 1)])).send().await;
    expect_error(anonymous.unwrap(), StatusCode::UNAUTHORIZED).await;
    assert_eq!(stock(&app, &ids[0]).await, 9);
}

#[tokio::test]
async fn invalid_lines_are_400_and_reserve_nothing() {
    let (app, _, ids) = shop_with(&[("Mug", 9.99, 10)]).await;
    let (token, _) = app.signed_up_customer().await;
    let unknown = "0193a1c2-7d4e-7b10-9a3f-5c6d7e8f9a0b";
    let many: Vec<(&str, u64)> = (0..51).map(|_| (ids[0].as_str(), 1)).collect();
    let cases = [
        (json!({"items": []}), "items"),
        (lines(&many), "items"),
        (lines(&[(&ids[0], 0)]), "items[0].quantity"),
        (lines(&[(&ids[0], 1001)]), "items[0].quantity"),
        (lines(&[(&ids[0], 600), (&ids[0], 600)]), "items[1].quantity"),
        (json!({"items": [{"productId": ids[0], "quantity": 1.5}]}), "items[0].quantity"),
        (lines(&[("not-an-id", 1)]), "items[0].productId"),
        (lines(&[(&ids[0], 1), (unknown, 2)]), unknown),
    ];
    for (body, field) in cases {
        let error = expect_error(app.place_order(&token, body.clone()).await, StatusCode::BAD_REQUEST).await;
        assert!(error["details"][field].is_string(), "{field} not named for {body}: {error}");
    }
    expect_error(app.place_order(&token, json!({})).await, StatusCode::BAD_REQUEST).await;
    assert_eq!(stock(&app, &ids[0]).await, 10);
}

#[tokio::test]
async fn not_enough_stock_is_409_naming_the_products_and_reserves_nothing() {
    let (app, _, ids) = shop_with(&[("Mug", 9.99, 5), ("Pan", 25.0, 1), ("Lid", 3.0, 0)]).await;
    let (token, _) = app.signed_up_customer().await;
    let response = app.place_order(&token, lines(&[(&ids[0], 5), (&ids[1], 2), (&ids[2], 1)])).await;
    let error = expect_error(response, StatusCode::CONFLICT).await;
    assert!(error["details"][&ids[1]].is_string() && error["details"][&ids[2]].is_string(), "{error}");
    assert!(error["details"].get(&ids[0]).is_none(), "the mug had enough: {error}");
    assert!(error["error"].as_str().unwrap().contains("Pan"), "{error}");
    assert_eq!((stock(&app, &ids[0]).await, stock(&app, &ids[1]).await), (5, 1));
    let orders = expect_status(app.orders(&token, "").await, StatusCode::OK).await;
    assert_eq!(orders["items"], json!([]));
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_order_and_reserves_once() {
    let (app, _, ids) = shop_with(&[("Mug", 9.99, 10)]).await;
    let (token, _) = app.signed_up_customer().await;
    let body = lines(&[(&ids[0], 2)]);
    let first = app.place_order_with_key(&token, "checkout-42", body.clone()).await;
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first = expect_status(first, StatusCode::CREATED).await;
    let again = app.place_order_with_key(&token, "checkout-42", body.clone()).await;
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(expect_status(again, StatusCode::CREATED).await, first);
    assert_eq!(stock(&app, &ids[0]).await, 8);

    let changed = app.place_order_with_key(&token, "checkout-42", lines(&[(&ids[0], 3)])).await;
    expect_error(changed, StatusCode::UNPROCESSABLE_ENTITY).await;
    // Keys belong to their user: another user's same key is a new order.
    let (other, _) = app.signed_up_customer().await;
    let theirs = expect_status(app.place_order_with_key(&other, "checkout-42", body).await, StatusCode::CREATED).await;
    assert_ne!(theirs["id"], first["id"]);
    for bad in ["", &"k".repeat(256), "has space"] {
        let response = app.place_order_with_key(&token, bad, lines(&[(&ids[0], 1)])).await;
        expect_error(response, StatusCode::BAD_REQUEST).await;
    }
}

#[tokio::test]
async fn concurrent_duplicates_with_one_key_create_one_order() {
    let (app, _, ids) = shop_with(&[("Mug", 9.99, 100)]).await;
    let (token, _) = app.signed_up_customer().await;
    let body = lines(&[(&ids[0], 1)]);
    let attempts = (0..10).map(|_| app.place_order_with_key(&token, "double-click", body.clone()));
    let responses = futures::future::join_all(attempts).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert!(statuses.iter().all(|s| *s == 201 || *s == 409), "{statuses:?}");
    assert_eq!(stock(&app, &ids[0]).await, 99, "reserved exactly once: {statuses:?}");
    let orders = expect_status(app.orders(&token, "").await, StatusCode::OK).await;
    assert_eq!(orders["items"].as_array().unwrap().len(), 1);
    let replay = app.place_order_with_key(&token, "double-click", body).await;
    assert_eq!(expect_status(replay, StatusCode::CREATED).await["id"], orders["items"][0]["id"]);
}

#[tokio::test]
async fn a_failed_order_frees_its_key_for_a_retry() {
    let (app, admin, ids) = shop_with(&[("Mug", 9.99, 1)]).await;
    let (token, _) = app.signed_up_customer().await;
    let body = lines(&[(&ids[0], 2)]);
    expect_error(app.place_order_with_key(&token, "retry-me", body.clone()).await, StatusCode::CONFLICT).await;
    expect_status(app.update_product(&admin, &ids[0], json!({"stockDelta": 5})).await, StatusCode::OK).await;
    expect_status(app.place_order_with_key(&token, "retry-me", body).await, StatusCode::CREATED).await;
    assert_eq!(stock(&app, &ids[0]).await, 4);
}

#[tokio::test]
async fn customers_see_their_own_orders_only() {
    let (app, admin, ids) = shop_with(&[("Mug", 9.99, 100)]).await;
    let (ada, ada_user) = app.signed_up_customer().await;
    let (bob, _) = app.signed_up_customer().await;
    let mut adas = Vec::new();
    for _ in 0..5 {
        adas.push(expect_status(app.place_order(&ada, lines(&[(&ids[0], 1)])).await, StatusCode::CREATED).await);
    }
    let bobs = expect_status(app.place_order(&bob, lines(&[(&ids[0], 1)])).await, StatusCode::CREATED).await;
    let bobs_id = bobs["id"].as_str().unwrap();

    let mut seen = Vec::new();
    let mut query = "limit=2".to_owned();
    loop {
        let page = expect_status(app.orders(&ada, &query).await, StatusCode::OK).await;
        seen.extend(page["items"].as_array().unwrap().iter().map(|o| o["id"].clone()));
        match page["nextCursor"].as_str() {
            Some(cursor) => query = format!("limit=2&cursor={cursor}"),
            None => break,
        }
    }
    let newest_first: Vec<Value> = adas.iter().rev().map(|o| o["id"].clone()).collect();
    assert_eq!(seen, newest_first);

    expect_error(app.order(&ada, bobs_id).await, StatusCode::NOT_FOUND).await;
    expect_error(app.order_items(&ada, bobs_id).await, StatusCode::NOT_FOUND).await;
    expect_error(app.set_order_status(&ada, bobs_id, "cancelled").await, StatusCode::NOT_FOUND).await;
    expect_error(app.order(&ada, "not-an-id").await, StatusCode::NOT_FOUND).await;
    let bob_id = bobs["userId"].as_str().unwrap();
    expect_error(app.orders(&ada, &format!("userId={bob_id}")).await, StatusCode::FORBIDDEN).await;
    let own = format!("userId={}", ada_user["id"].as_str().unwrap());
    expect_status(app.orders(&ada, &own).await, StatusCode::OK).await;

    let items = expect_status(app.order_items(&ada, adas[0]["id"].as_str().unwrap()).await, StatusCode::OK).await;
    assert_eq!(items["items"], adas[0]["items"]);
    // Admins read anyone's orders and filter by user or status.
    expect_status(app.order(&admin, bobs_id).await, StatusCode::OK).await;
    let bobs_list = expect_status(app.orders(&admin, &format!("userId={bob_id}")).await, StatusCode::OK).await;
    assert_eq!(bobs_list["items"].as_array().unwrap().len(), 1);
    let pending = expect_status(app.orders(&admin, "status=pending&limit=100").await, StatusCode::OK).await;
    assert_eq!(pending["items"].as_array().unwrap().len(), 6);
    for bad in ["status=lost", "limit=0", "userId=x", "sort=asc", "cursor=forged"] {
        expect_error(app.orders(&admin, bad).await, StatusCode::BAD_REQUEST).await;
    }
}

#[tokio::test]
async fn the_status_workflow_is_enforced() {
    let (app, admin, ids) = shop_with(&[("Mug", 9.99, 10)]).await;
    let (token, _) = app.signed_up_customer().await;
    let order = expect_status(app.place_order(&token, lines(&[(&ids[0], 2)])).await, StatusCode::CREATED).await;
    let id = order["id"].as_str().unwrap();
    expect_error(app.set_order_status(&token, id, "confirmed").await, StatusCode::FORBIDDEN).await;
    expect_error(app.set_order_status(&admin, id, "shipped").await, StatusCode::CONFLICT).await;
    expect_error(app.set_order_status(&admin, id, "lost").await, StatusCode::BAD_REQUEST).await;
    for status in ["confirmed", "shipped", "delivered"] {
        let updated = expect_status(app.set_order_status(&admin, id, status).await, StatusCode::OK).await;
        assert_eq!(updated["status"], status);
    }
    expect_error(app.set_order_status(&admin, id, "cancelled").await, StatusCode::CONFLICT).await;
    expect_error(app.set_order_status(&token, id, "cancelled").await, StatusCode::CONFLICT).await;
    assert_eq!(stock(&app, &ids[0]).await, 8, "a delivered order keeps its stock");
    let filtered = expect_status(app.orders(&token, "status=delivered").await, StatusCode::OK).await;
    assert_eq!(filtered["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn cancelling_returns_the_stock_once_even_when_cancels_race() {
    let (app, admin, ids) = shop_with(&[("Mug", 9.99, 10)]).await;
    let (token, _) = app.signed_up_customer().await;
    let order = expect_status(app.place_order(&token, lines(&[(&ids[0], 4)])).await, StatusCode::CREATED).await;
    let id = order["id"].as_str().unwrap();
    expect_status(app.set_order_status(&admin, id, "confirmed").await, StatusCode::OK).await;
    assert_eq!(stock(&app, &ids[0]).await, 6);
    let cancels = (0..8).map(|i| app.set_order_status(if i % 2 == 0 { &token } else { &admin }, id, "cancelled"));
    let statuses: Vec<u16> = futures::future::join_all(cancels).await.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 409), "{statuses:?}");
    assert_eq!(stock(&app, &ids[0]).await, 10);
    let cancelled = expect_status(app.order(&token, id).await, StatusCode::OK).await;
    assert_eq!(cancelled["status"], "cancelled");
}

#[tokio::test]
async fn fifty_buyers_racing_for_ten_units_never_oversell() {
    let (app, _, ids) = shop_with(&[("Limited Edition", 99.0, 10)]).await;
    let signups = (0..50).map(|_| app.signed_up_customer());
    let buyers: Vec<String> = futures::future::join_all(signups).await.into_iter().map(|(token, _)| token).collect();
    let body = lines(&[(&ids[0], 1)]);
    let attempts = buyers.iter().map(|token| app.place_order(token, body.clone()));
    let statuses: Vec<u16> = futures::future::join_all(attempts).await.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 10, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 40, "{statuses:?}");
    assert_eq!(stock(&app, &ids[0]).await, 0);
}

/// The rush the store's breaker once failed (issue 29): 200 buyers at once
/// for 40 units of one product. Orders of one product queue in the
/// process, and a buyer who reads the stock short gets the 409 without a
/// transaction, so the hot product stays its own problem: exactly 40 win,
/// every other buyer gets a 409 (no 429, no 5xx), the breaker stays
/// closed, and another product's page answers all along. Ignored in the
/// parallel run, where a hundred other servers share DynamoDB Local and
/// its slowness is the whole machine's, not the hot product's:
/// `test-all.sh` runs it alone on each backend (`--ignored`).
#[tokio::test]
#[ignore = "run alone by local-stack/test-all.sh"]
async fn two_hundred_buyers_for_forty_units_get_forty_orders_and_409s_while_other_reads_answer() {
    // Outcomes, not latency, are under test. One product's orders take
    // turns, and on this 2-core machine DynamoDB Local spends 50-130 ms on
    // each (a fresh JVM, or one slowed by a suite's tables: the code of
    // 4eebe33 lost 3-16 of the 40 orders to 429s there too), so 40 orders
    // can take longer than the default 3 s request budget leaves the
    // buyers queued behind them. 10 s lets the queue drain; in AWS each
    // turn is a few milliseconds.
    let unlimited = [("RATE_LIMIT_MAX", "1000000"), ("REQUEST_TIMEOUT_MS", "10000")];
    let (app, _, ids) = shop_with_env(&unlimited, &[("Flash", 25.0, 40), ("Everyday", 5.0, 100)]).await;
    // One after another: argon2 in a debug build is slow, and the rush,
    // not the sign-ups, is under test.
    let mut customers = Vec::new();
    for _ in 0..20 {
        customers.push(app.signed_up_customer().await.0);
    }
    let body = lines(&[(&ids[0], 1)]);
    // Twenty customers, ten orders each, all at once.
    let attempts = (0..200).map(|n| app.place_order(&customers[n % 20], body.clone()));
    let rush = futures::future::join_all(attempts);
    let reads = async {
        let mut statuses = Vec::new();
        for _ in 0..40 {
            statuses.push(app.get_product(&ids[1]).await.status().as_u16());
        }
        statuses
    };
    let (answers, reads) = tokio::join!(rush, reads);
    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 40, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 160, "{statuses:?}");
    assert!(reads.iter().all(|s| *s == 200), "the other product's page: {reads:?}");
    assert_eq!(stock(&app, &ids[0]).await, 0);
    let health = expect_status(app.health().await, StatusCode::OK).await;
    assert_eq!(health["breakers"]["store"], "closed", "{health}");
    // A cancellation clears the sold-out answer at once.
    let orders = expect_status(app.orders(&customers[0], "").await, StatusCode::OK).await;
    let mine = orders["items"][0]["id"].as_str().unwrap().to_owned();
    expect_status(app.set_order_status(&customers[0], &mine, "cancelled").await, StatusCode::OK).await;
    expect_status(app.place_order(&customers[1], body).await, StatusCode::CREATED).await;
}

/// A small deterministic generator, so a failing run can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

#[tokio::test]
async fn stock_is_conserved_through_a_random_mix_of_orders_cancels_and_adjustments() {
    let initial = [20u64, 5, 12, 1];
    let specs: Vec<(String, f64, u64)> =
        initial.iter().enumerate().map(|(i, s)| (format!("Item {i}"), 2.5, *s)).collect();
    let spec_refs: Vec<(&str, f64, u64)> = specs.iter().map(|(n, p, s)| (n.as_str(), *p, *s)).collect();
    let (app, admin, ids) = shop_with(&spec_refs).await;
    let app = &app;
    let mut customers = Vec::new();
    for _ in 0..3 {
        customers.push(app.signed_up_customer().await.0);
    }
    let seed = std::env::var("SHOP_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed);
    let mut rng = Lcg(seed);
    let mut adjustments: HashMap<String, i64> = HashMap::new();
    let mut placed: Vec<(String, String)> = Vec::new(); // (order id, owner token)
    for round in 0..12 {
        // A burst of concurrent actions, then check nothing leaked.
        let mut orders = Vec::new();
        for _ in 0..6 {
            let token = customers[rng.next(3) as usize].clone();
            let first = rng.next(4) as usize;
            let second = rng.next(4) as usize;
            let body = lines(&[(&ids[first], 1 + rng.next(3)), (&ids[second], 1 + rng.next(2))]);
            orders.push(async move {
                let response = app.place_order(&token, body).await;
                (token, response)
            });
        }
        let mut cancels = Vec::new();
        for _ in 0..2 {
            if placed.is_empty() {
                break;
            }
            let (id, token) = placed[rng.next(placed.len() as u64) as usize].clone();
            cancels.push(async move { app.set_order_status(&token, &id, "cancelled").await });
        }
        let product = ids[rng.next(4) as usize].clone();
        let delta = rng.next(7) as i64 - 3;
        let adjustment =
            async { (product.clone(), app.update_product(&admin, &product, json!({"stockDelta": delta})).await) };
        let (order_results, cancel_results, (adjusted, adjustment_result)) =
            tokio::join!(futures::future::join_all(orders), futures::future::join_all(cancels), adjustment);
        for (token, response) in order_results {
            let status = response.status().as_u16();
            assert!(status == 201 || status == 409, "round {round}: order answered {status}");
            if status == 201 {
                let order: Value = response.json().await.unwrap();
                placed.push((order["id"].as_str().unwrap().to_owned(), token));
            }
        }
        for response in cancel_results {
            let status = response.status().as_u16();
            assert!(status == 200 || status == 409, "round {round}: cancel answered {status}");
        }
        match adjustment_result.status().as_u16() {
            200 => *adjustments.entry(adjusted).or_default() += delta,
            409 => {}
            other => panic!("round {round}: adjustment answered {other}"),
        }
    }
    // initial + adjustments == current + units in orders that are not cancelled
    let mut reserved: HashMap<String, u64> = HashMap::new();
    for status in ["pending", "confirmed", "shipped", "delivered"] {
        let page = expect_status(app.orders(&admin, &format!("status={status}&limit=100")).await, StatusCode::OK).await;
        assert!(page["nextCursor"].is_null());
        for order in page["items"].as_array().unwrap() {
            for line in order["items"].as_array().unwrap() {
                *reserved.entry(line["productId"].as_str().unwrap().to_owned()).or_default() +=
                    line["quantity"].as_u64().unwrap();
            }
        }
    }
    assert!(placed.len() >= 10, "the mix placed too few orders to mean much: {}", placed.len());
    for (i, id) in ids.iter().enumerate() {
        let expected = initial[i] as i64 + adjustments.get(id).copied().unwrap_or(0);
        let actual = stock(app, id).await as i64 + reserved.get(id).copied().unwrap_or(0) as i64;
        assert_eq!(actual, expected, "product {i} (seed {seed})");
    }
}
