//! Carts and checkout, through the running server: editing, live prices,
//! deleted and short products, limits, If-Match, idempotent checkout, and
//! shoppers racing for the last units.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_error, expect_status, shop_with, stock};

fn line<'a>(cart: &'a Value, id: &str) -> &'a Value {
    cart["items"].as_array().unwrap().iter().find(|line| line["productId"] == id).expect("the line")
}

#[tokio::test]
async fn an_empty_cart_is_a_200_with_nothing_in_it() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signed_up_customer().await;
    let cart = expect_status(app.cart(&token).await, StatusCode::OK).await;
    assert_eq!(cart, json!({"items": [], "subtotal": 0.0, "itemCount": 0, "version": 0, "updatedAt": null}));
}

#[tokio::test]
async fn lines_are_added_updated_removed_and_the_cart_emptied() {
    let (app, _, ids) = shop_with(&[("Mug", 9.5, 10), ("Lamp", 24.99, 3)]).await;
    let (token, _) = app.signed_up_customer().await;
    let cart = expect_status(app.set_cart_line(&token, &ids[0], 2, None).await, StatusCode::OK).await;
    assert_eq!(cart["version"], 1);
    let cart = expect_status(app.set_cart_line(&token, &ids[1], 1, None).await, StatusCode::OK).await;
    assert_eq!((cart["itemCount"].as_u64(), cart["subtotal"].as_f64()), (Some(3), Some(43.99)));
    assert_eq!(
        line(&cart, &ids[1]),
        &json!({
            "productId": ids[1], "productName": "Lamp", "quantity": 1, "unitPrice": 24.99, "lineTotal": 24.99,
            "available": true, "availableQuantity": 3
        })
    );
    let cart = expect_status(app.set_cart_line(&token, &ids[0], 5, None).await, StatusCode::OK).await;
    assert_eq!(line(&cart, &ids[0])["lineTotal"], 47.5);
    let cart = expect_status(app.set_cart_line(&token, &ids[0], 0, None).await, StatusCode::OK).await;
    assert_eq!(cart["items"].as_array().unwrap().len(), 1, "quantity 0 removes the line");
    let cart = expect_status(app.remove_cart_line(&token, &ids[1]).await, StatusCode::OK).await;
    assert_eq!((cart["items"].as_array().unwrap().len(), cart["version"].as_u64()), (0, Some(5)));
    let again = expect_status(app.remove_cart_line(&token, &ids[1]).await, StatusCode::OK).await;
    assert_eq!(again["version"], 5, "removing a line that is not there changes nothing");

    expect_status(app.set_cart_line(&token, &ids[0], 1, None).await, StatusCode::OK).await;
    let cleared = app.clear_cart(&token, None).await;
    assert_eq!(cleared.status(), StatusCode::NO_CONTENT);
    assert_eq!(expect_status(app.cart(&token).await, StatusCode::OK).await["items"], json!([]));
    assert_eq!(app.clear_cart(&token, None).await.status(), StatusCode::NO_CONTENT, "emptying twice is fine");
}

#[tokio::test]
async fn a_cart_shows_the_price_now_and_flags_deleted_and_short_products() {
    let (app, admin, ids) = shop_with(&[("Mug", 9.5, 10), ("Lamp", 24.99, 3), ("Vase", 15.0, 4)]).await;
    let (token, _) = app.signed_up_customer().await;
    for (id, quantity) in [(&ids[0], 2), (&ids[1], 2), (&ids[2], 1)] {
        expect_status(app.set_cart_line(&token, id, quantity, None).await, StatusCode::OK).await;
    }
    expect_status(app.update_product(&admin, &ids[0], json!({"price": 11.0})).await, StatusCode::OK).await;
    expect_status(app.update_product(&admin, &ids[1], json!({"stock": 1})).await, StatusCode::OK).await;
    assert_eq!(app.delete_product(&admin, &ids[2]).await.status(), StatusCode::NO_CONTENT);

    let cart = expect_status(app.cart(&token).await, StatusCode::OK).await;
    assert_eq!(line(&cart, &ids[0])["unitPrice"], 11.0, "the price now, not when it was added");
    assert_eq!(line(&cart, &ids[0])["lineTotal"], 22.0);
    let short = line(&cart, &ids[1]);
    assert_eq!((short["available"].as_bool(), short["availableQuantity"].as_u64()), (Some(false), Some(1)));
    assert_eq!(
        line(&cart, &ids[2]),
        &json!({
            "productId": ids[2], "productName": "Vase", "quantity": 1, "unitPrice": null, "lineTotal": null,
            "available": false, "availableQuantity": 0
        })
    );
    assert_eq!(cart["subtotal"], 71.98, "a deleted product adds nothing");

    // Checkout names both lines that cannot be bought, reserves nothing, keeps the cart.
    let refused = expect_error(app.checkout(&token, None).await, StatusCode::CONFLICT).await;
    let details = refused["details"].as_object().unwrap();
    assert!(details.contains_key(&ids[1]) && details.contains_key(&ids[2]) && details.len() == 2, "{refused}");
    assert_eq!((stock(&app, &ids[0]).await, stock(&app, &ids[1]).await), (10, 1));
    assert_eq!(expect_status(app.cart(&token).await, StatusCode::OK).await["version"], cart["version"]);

    // Mended, it checks out at the prices of the moment.
    expect_status(app.remove_cart_line(&token, &ids[2]).await, StatusCode::OK).await;
    expect_status(app.set_cart_line(&token, &ids[1], 1, None).await, StatusCode::OK).await;
    let order = expect_status(app.checkout(&token, None).await, StatusCode::CREATED).await;
    assert_eq!((order["source"].as_str(), order["totalAmount"].as_f64()), (Some("cart"), Some(46.99)));
    assert_eq!((stock(&app, &ids[0]).await, stock(&app, &ids[1]).await), (8, 0));
}

#[tokio::test]
async fn bad_input_is_a_clear_4xx_and_changes_nothing() {
    let (app, _, ids) = shop_with(&[("Mug", 9.5, 10)]).await;
    let (token, _) = app.signed_up_customer().await;
    expect_status(app.set_cart_line(&token, &ids[0], 1, None).await, StatusCode::OK).await;
    let path = format!("/api/cart/items/{}", ids[0]);
    for body in [json!({"quantity": 1001}), json!({"quantity": -1}), json!({"quantity": 1.5})] {
        let response = app.request(reqwest::Method::PUT, &path).bearer_auth(&token).json(&body).send().await.unwrap();
        let error = expect_error(response, StatusCode::BAD_REQUEST).await;
        assert!(error["details"]["quantity"].is_string(), "{body}: {error}");
    }
    for body in [json!({"quantity": "2"}), json!({}), json!([1])] {
        let response = app.request(reqwest::Method::PUT, &path).bearer_auth(&token).json(&body).send().await.unwrap();
        expect_error(response, StatusCode::BAD_REQUEST).await;
    }
    let extra = json!({"quantity": 1, "price": 0.01});
    let response = app.request(reqwest::Method::PUT, &path).bearer_auth(&token).json(&extra).send().await.unwrap();
    expect_error(response, StatusCode::BAD_REQUEST).await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let missing = expect_error(app.set_cart_line(&token, &unknown, 1, None).await, StatusCode::NOT_FOUND).await;
    assert!(missing["error"].as_str().unwrap().contains(&unknown), "{missing}");
    expect_error(app.set_cart_line(&token, "not-an-id", 1, None).await, StatusCode::NOT_FOUND).await;
    let with_body = app.request(reqwest::Method::POST, "/api/checkout").bearer_auth(&token).json(&json!({"x": 1}));
    expect_error(with_body.send().await.unwrap(), StatusCode::BAD_REQUEST).await;
    let cart = expect_status(app.cart(&token).await, StatusCode::OK).await;
    assert_eq!((cart["version"].as_u64(), cart["itemCount"].as_u64()), (Some(1), Some(1)), "nothing changed");
    expect_error(app.cart("not-a-token").await, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn a_cart_holds_at_most_fifty_products_and_a_thousand_units() {
    let products: Vec<(String, f64, u64)> = (0..51).map(|i| (format!("Item {i}"), 1.0, 5)).collect();
    let borrowed: Vec<(&str, f64, u64)> = products.iter().map(|(n, p, s)| (n.as_str(), *p, *s)).collect();
    let (app, _, ids) = shop_with(&borrowed).await;
    let (token, _) = app.signed_up_customer().await;
    for id in &ids[..50] {
        expect_status(app.set_cart_line(&token, id, 1, None).await, StatusCode::OK).await;
    }
    expect_error(app.set_cart_line(&token, &ids[50], 1, None).await, StatusCode::CONFLICT).await;
    expect_error(app.set_cart_line(&token, &ids[0], 1000, None).await, StatusCode::CONFLICT).await;
    let cart = expect_status(app.set_cart_line(&token, &ids[0], 951, None).await, StatusCode::OK).await;
    assert_eq!((cart["itemCount"].as_u64(), cart["items"].as_array().unwrap().len()), (Some(1000), 50));
}

#[tokio::test]
async fn if_match_refuses_a_write_to_a_cart_that_changed() {
    let (app, _, ids) = shop_with(&[("Mug", 9.5, 10), ("Lamp", 24.99, 3)]).await;
    let (token, _) = app.signed_up_customer().await;
    let first = expect_status(app.set_cart_line(&token, &ids[0], 1, Some(0)).await, StatusCode::OK).await;
    assert_eq!(first["version"], 1);
    // Another tab changes the cart.
    expect_status(app.set_cart_line(&token, &ids[1], 1, Some(1)).await, StatusCode::OK).await;
    // The first tab's write, based on version 1, is refused and changes nothing.
    expect_error(app.set_cart_line(&token, &ids[0], 4, Some(1)).await, StatusCode::PRECONDITION_FAILED).await;
    expect_error(app.clear_cart(&token, Some(1)).await, StatusCode::PRECONDITION_FAILED).await;
    let cart = expect_status(app.cart(&token).await, StatusCode::OK).await;
    assert_eq!((cart["version"].as_u64(), line(&cart, &ids[0])["quantity"].as_u64()), (Some(2), Some(1)));
    assert_eq!(app.clear_cart(&token, Some(2)).await.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn nobody_sees_or_changes_another_users_cart() {
    let (app, _, ids) = shop_with(&[("Mug", 9.5, 10)]).await;
    let (ada, _) = app.signed_up_customer().await;
    let (bob, _) = app.signed_up_customer().await;
    expect_status(app.set_cart_line(&ada, &ids[0], 3, None).await, StatusCode::OK).await;
    assert_eq!(expect_status(app.cart(&bob).await, StatusCode::OK).await["items"], json!([]));
    assert_eq!(app.clear_cart(&bob, None).await.status(), StatusCode::NO_CONTENT);
    expect_error(app.checkout(&bob, None).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    let cart = expect_status(app.cart(&ada).await, StatusCode::OK).await;
    assert_eq!(line(&cart, &ids[0])["quantity"], 3, "bob's requests touched only bob's cart");
}

#[tokio::test]
async fn checkout_places_one_pending_order_and_empties_the_cart() {
    let (app, _, ids) = shop_with(&[("Mug", 9.5, 10), ("Lamp", 24.99, 3)]).await;
    let (token, user) = app.signed_up_customer().await;
    expect_error(app.checkout(&token, None).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    expect_status(app.set_cart_line(&token, &ids[0], 2, None).await, StatusCode::OK).await;
    expect_status(app.set_cart_line(&token, &ids[1], 1, None).await, StatusCode::OK).await;
    let response = app.checkout(&token, Some("checkout-1")).await;
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let order = expect_status(response, StatusCode::CREATED).await;
    assert_eq!(location, format!("/api/orders/{}", order["id"].as_str().unwrap()));
    assert_eq!((order["status"].as_str(), order["source"].as_str()), (Some("pending"), Some("cart")));
    assert_eq!((order["userId"].as_str(), order["totalAmount"].as_f64()), (user["id"].as_str(), Some(43.99)));
    assert_eq!((stock(&app, &ids[0]).await, stock(&app, &ids[1]).await), (8, 2));
    assert_eq!(expect_status(app.cart(&token).await, StatusCode::OK).await["items"], json!([]));

    // The same key again: the same order, nothing reserved, though the cart is gone.
    let replay = app.checkout(&token, Some("checkout-1")).await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(expect_status(replay, StatusCode::CREATED).await["id"], order["id"]);
    assert_eq!(stock(&app, &ids[0]).await, 8);
    // A key first used to place an order directly is another request.
    let direct = json!({"items": [{"productId": ids[0], "quantity": 1}]});
    expect_status(app.place_order_with_key(&token, "order-1", direct).await, StatusCode::CREATED).await;
    expect_status(app.set_cart_line(&token, &ids[0], 1, None).await, StatusCode::OK).await;
    expect_error(app.checkout(&token, Some("order-1")).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    let history = expect_status(app.orders(&token, "").await, StatusCode::OK).await;
    assert_eq!(history["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn racing_checkouts_of_one_cart_place_exactly_one_order() {
    let (app, _, ids) = shop_with(&[("Mug", 9.5, 50)]).await;
    let (token, _) = app.signed_up_customer().await;
    expect_status(app.set_cart_line(&token, &ids[0], 2, None).await, StatusCode::OK).await;
    let clicks = (0..6).map(|_| app.checkout(&token, None));
    let statuses: Vec<u16> = futures::future::join_all(clicks).await.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    // The others found the cart changed (409) or already gone (422).
    assert!(statuses.iter().all(|s| [201, 409, 422].contains(s)), "{statuses:?}");
    assert_eq!(stock(&app, &ids[0]).await, 48);
    let history = expect_status(app.orders(&token, "").await, StatusCode::OK).await;
    assert_eq!(history["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn fifty_shoppers_racing_for_ten_units_get_ten_orders_and_keep_their_carts() {
    let (app, _, ids) = shop_with(&[("Limited Edition", 99.0, 10)]).await;
    let signups = (0..50).map(|_| app.signed_up_customer());
    let shoppers: Vec<String> = futures::future::join_all(signups).await.into_iter().map(|(token, _)| token).collect();
    let fills = shoppers.iter().map(|token| app.set_cart_line(token, &ids[0], 1, None));
    for response in futures::future::join_all(fills).await {
        assert_eq!(response.status(), StatusCode::OK);
    }
    let attempts = shoppers.iter().map(|token| app.checkout(token, None));
    let statuses: Vec<u16> = futures::future::join_all(attempts).await.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 10, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 40, "{statuses:?}");
    assert_eq!(stock(&app, &ids[0]).await, 0);
    for (token, status) in shoppers.iter().zip(&statuses) {
        let cart = expect_status(app.cart(token).await, StatusCode::OK).await;
        let kept = cart["items"].as_array().unwrap().len();
        assert_eq!(kept, usize::from(*status == 409), "a winner's cart is emptied, a loser's kept");
    }
}

#[tokio::test]
async fn a_checkout_is_an_order_placed_event_from_the_cart() {
    let (app, admin, ids) = shop_with(&[("Mug", 9.5, 10)]).await;
    let (token, _) = app.signed_up_customer().await;
    expect_status(app.set_cart_line(&token, &ids[0], 2, None).await, StatusCode::OK).await;
    let order = expect_status(app.checkout(&token, None).await, StatusCode::CREATED).await;
    app.settled().await;
    let placed: Vec<Value> =
        app.all_events(&admin).await.into_iter().filter(|event| event["type"] == "order.placed").collect();
    assert_eq!(placed.len(), 1, "cart edits are no events: {placed:?}");
    assert_eq!(
        (placed[0]["data"]["orderId"].clone(), placed[0]["data"]["source"].clone()),
        (order["id"].clone(), json!("cart"))
    );
}
