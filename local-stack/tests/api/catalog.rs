//! Categories and products: roles, validation, filters, paging, ETags and
//! the cache.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_error, expect_status};

/// An app with an admin token and the categories `Books` and `Electronics`.
async fn catalog_app() -> (TestApp, String) {
    let app = TestApp::spawn().await;
    let (admin, _) = app.signed_up_admin().await;
    for name in ["Books", "Electronics"] {
        expect_status(app.create_category(&admin, name).await, StatusCode::CREATED).await;
    }
    (app, admin)
}

fn ids(items: &Value) -> Vec<String> {
    items.as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn only_admins_create_categories_and_names_are_unique() {
    let app = TestApp::spawn().await;
    let (customer, _) = app.signed_up_customer().await;
    let (admin, _) = app.signed_up_admin().await;
    let anonymous = app.request(Method::POST, "/api/categories").json(&json!({"name": "Toys"})).send().await.unwrap();
    expect_error(anonymous, StatusCode::UNAUTHORIZED).await;
    expect_error(app.create_category(&customer, "Toys").await, StatusCode::FORBIDDEN).await;
    let created = expect_status(app.create_category(&admin, "Toys").await, StatusCode::CREATED).await;
    assert_eq!(created["name"], "Toys");
    expect_error(app.create_category(&admin, " TOYS ").await, StatusCode::CONFLICT).await;
    let invalid = expect_error(app.create_category(&admin, "").await, StatusCode::BAD_REQUEST).await;
    assert!(invalid["details"]["name"].is_string());
    let listed = expect_status(app.categories().await, StatusCode::OK).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_created_category_shows_in_the_cached_list_at_once() {
    let (app, admin) = catalog_app().await;
    let before = expect_status(app.categories().await, StatusCode::OK).await;
    assert_eq!(before["items"].as_array().unwrap().len(), 2);
    expect_status(app.create_category(&admin, "Garden").await, StatusCode::CREATED).await;
    let after = expect_status(app.categories().await, StatusCode::OK).await;
    let names: Vec<&str> = after["items"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Books", "Electronics", "Garden"]);
}

#[tokio::test]
async fn product_writes_need_an_admin() {
    let (app, admin) = catalog_app().await;
    let (customer, _) = app.signed_up_customer().await;
    let body = json!({"name": "Lamp", "price": 10, "category": "Books", "stock": 1});
    let anonymous = app.request(Method::POST, "/api/products").json(&body).send().await.unwrap();
    expect_error(anonymous, StatusCode::UNAUTHORIZED).await;
    expect_error(app.create_product(&customer, body.clone()).await, StatusCode::FORBIDDEN).await;
    let product = expect_status(app.create_product(&admin, body).await, StatusCode::CREATED).await;
    let id = product["id"].as_str().unwrap();
    expect_error(app.update_product(&customer, id, json!({"price": 1})).await, StatusCode::FORBIDDEN).await;
    expect_error(app.delete_product(&customer, id).await, StatusCode::FORBIDDEN).await;
    let anonymous = app.request(Method::DELETE, &format!("/api/products/{id}")).send().await.unwrap();
    expect_error(anonymous, StatusCode::UNAUTHORIZED).await;
    expect_status(app.get_product(id).await, StatusCode::OK).await;
}

#[tokio::test]
async fn a_product_keeps_exact_prices_and_the_category_spelling() {
    let (app, admin) = catalog_app().await;
    let body =
        json!({"name": "  Rust in Action ", "description": "A book.", "price": 0.29, "category": "books", "stock": 3});
    let response = app.create_product(&admin, body).await;
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let product = expect_status(response, StatusCode::CREATED).await;
    assert_eq!(location, format!("/api/products/{}", product["id"].as_str().unwrap()));
    assert_eq!(product["name"], "Rust in Action");
    assert_eq!(product["price"], json!(0.29));
    assert_eq!(product["category"], "Books");
    assert_eq!(product["stock"], 3);
    for field in ["id", "description", "createdAt", "updatedAt"] {
        assert!(product[field].is_string(), "{field}: {product}");
    }
    let fetched = expect_status(app.get_product(product["id"].as_str().unwrap()).await, StatusCode::OK).await;
    assert_eq!(fetched, product);
}

#[tokio::test]
async fn every_invalid_product_field_is_named() {
    let (app, admin) = catalog_app().await;
    let cases = [
        (json!({"name": "", "price": 1, "category": "Books", "stock": 1}), "name"),
        (json!({"name": "x".repeat(201), "price": 1, "category": "Books", "stock": 1}), "name"),
        (
            json!({"name": "A", "description": "d".repeat(5001), "price": 1, "category": "Books", "stock": 1}),
            "description",
        ),
        (json!({"name": "A", "price": 0, "category": "Books", "stock": 1}), "price"),
        (json!({"name": "A", "price": -5, "category": "Books", "stock": 1}), "price"),
        (json!({"name": "A", "price": 1.999, "category": "Books", "stock": 1}), "price"),
        (json!({"name": "A", "price": 1000000.01, "category": "Books", "stock": 1}), "price"),
        (json!({"name": "A", "price": 1, "category": "Books", "stock": -1}), "stock"),
        (json!({"name": "A", "price": 1, "category": "Books", "stock": 1.5}), "stock"),
        (json!({"name": "A", "price": 1, "category": "Toys", "stock": 1}), "category"),
        (json!({"name": "A", "price": 1, "category": "Books", "stock": 1, "sku": "x"}), "sku"),
        (json!({"name": "A", "price": 1, "category": "Books"}), "stock"),
    ];
    for (body, field) in cases {
        let error = expect_error(app.create_product(&admin, body.clone()).await, StatusCode::BAD_REQUEST).await;
        assert!(error["details"][field].is_string(), "{field} not named for {body}: {error}");
    }
    let string_price = json!({"name": "A", "price": "1.00", "category": "Books", "stock": 1});
    expect_error(app.create_product(&admin, string_price).await, StatusCode::BAD_REQUEST).await;
    let all = expect_status(app.list_products("").await, StatusCode::OK).await;
    assert_eq!(all["items"], json!([]), "nothing was created");
}

#[tokio::test]
async fn an_etag_answers_304_until_the_product_changes() {
    let (app, admin) = catalog_app().await;
    let product = app.product(&admin, "Kindle", "Electronics", 99.0, 4).await;
    let id = product["id"].as_str().unwrap();
    let first = app.get_product(id).await;
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"'), "strong ETag: {etag}");
    let cached = app.request(Method::GET, &format!("/api/products/{id}")).header("if-none-match", &etag).send().await;
    let cached = cached.unwrap();
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(cached.headers()["etag"], etag.as_str());
    assert!(cached.text().await.unwrap().is_empty());

    expect_status(app.update_product(&admin, id, json!({"stockDelta": -1})).await, StatusCode::OK).await;
    let changed = app.request(Method::GET, &format!("/api/products/{id}")).header("if-none-match", &etag).send().await;
    let changed = changed.unwrap();
    assert_ne!(changed.headers()["etag"], etag.as_str());
    assert_eq!(expect_status(changed, StatusCode::OK).await["stock"], 3);
}

#[tokio::test]
async fn unknown_and_malformed_product_ids_are_404() {
    let (app, admin) = catalog_app().await;
    for id in ["not-a-uuid", "0193a1c2-7d4e-7b10-9a3f-5c6d7e8f9a0b"] {
        expect_error(app.get_product(id).await, StatusCode::NOT_FOUND).await;
        expect_error(app.update_product(&admin, id, json!({"price": 1})).await, StatusCode::NOT_FOUND).await;
        expect_error(app.delete_product(&admin, id).await, StatusCode::NOT_FOUND).await;
    }
}

#[tokio::test]
async fn an_update_changes_only_what_it_names() {
    let (app, admin) = catalog_app().await;
    let product = app.product(&admin, "Monitor", "Electronics", 199.99, 10).await;
    let id = product["id"].as_str().unwrap();
    let updated = expect_status(app.update_product(&admin, id, json!({"price": 149.5})).await, StatusCode::OK).await;
    assert_eq!(updated["price"], json!(149.5));
    for field in ["name", "description", "category", "stock", "createdAt"] {
        assert_eq!(updated[field], product[field], "{field}");
    }
    let moved =
        expect_status(app.update_product(&admin, id, json!({"category": "BOOKS", "stock": 2})).await, StatusCode::OK)
            .await;
    assert_eq!((moved["category"].as_str(), moved["stock"].as_u64()), (Some("Books"), Some(2)));
    let added = expect_status(app.update_product(&admin, id, json!({"stockDelta": 5})).await, StatusCode::OK).await;
    assert_eq!(added["stock"], 7);

    let below_zero = app.update_product(&admin, id, json!({"stockDelta": -8})).await;
    expect_error(below_zero, StatusCode::CONFLICT).await;
    // Found by the API fuzzer: an adjustment could pass the cap that a set
    // enforces.
    let above_cap = app.update_product(&admin, id, json!({"stockDelta": 1_000_000_000})).await;
    let refused = expect_error(above_cap, StatusCode::CONFLICT).await;
    assert_eq!(refused["error"], "stock cannot go above 1000000000");
    let both = expect_error(
        app.update_product(&admin, id, json!({"stock": 1, "stockDelta": 1})).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(both["details"]["stockDelta"].is_string());
    expect_error(app.update_product(&admin, id, json!({})).await, StatusCode::BAD_REQUEST).await;
    expect_error(app.update_product(&admin, id, json!({"category": "Toys"})).await, StatusCode::BAD_REQUEST).await;
    expect_error(app.update_product(&admin, id, json!({"createdAt": "x"})).await, StatusCode::BAD_REQUEST).await;
    let unchanged = expect_status(app.get_product(id).await, StatusCode::OK).await;
    assert_eq!(unchanged["stock"], 7);
}

#[tokio::test]
async fn a_deleted_product_is_gone_everywhere() {
    let (app, admin) = catalog_app().await;
    let product = app.product(&admin, "Pager", "Electronics", 5.0, 1).await;
    let id = product["id"].as_str().unwrap();
    expect_status(app.get_product(id).await, StatusCode::OK).await;
    let listed = expect_status(app.list_products("").await, StatusCode::OK).await;
    assert_eq!(ids(&listed["items"]), [id]);
    expect_status(app.delete_product(&admin, id).await, StatusCode::NO_CONTENT).await;
    expect_error(app.get_product(id).await, StatusCode::NOT_FOUND).await;
    expect_error(app.delete_product(&admin, id).await, StatusCode::NOT_FOUND).await;
    let listed = expect_status(app.list_products("").await, StatusCode::OK).await;
    assert_eq!(listed["items"], json!([]));
}

#[tokio::test]
async fn reads_right_after_writes_never_show_old_data() {
    let (app, admin) = catalog_app().await;
    let product = app.product(&admin, "Headphones", "Electronics", 50.0, 5).await;
    let id = product["id"].as_str().unwrap();
    // The change feed invalidates what the creation touched a moment later.
    app.settled().await;
    // Warm the caches, then write, then read.
    for path in [format!("/api/products/{id}"), "/api/products?category=Electronics".to_owned()] {
        assert!(app.read_until_cached(&path).await.is_some(), "{path} was never answered from the cache");
    }
    expect_status(
        app.update_product(&admin, id, json!({"price": 45.0, "name": "Headphones II"})).await,
        StatusCode::OK,
    )
    .await;
    let fetched = expect_status(app.get_product(id).await, StatusCode::OK).await;
    assert_eq!((fetched["price"].clone(), fetched["name"].clone()), (json!(45.0), json!("Headphones II")));
    let listed = expect_status(app.list_products("category=Electronics").await, StatusCode::OK).await;
    assert_eq!(listed["items"][0]["name"], "Headphones II");
    let newer = app.product(&admin, "Earbuds", "Electronics", 20.0, 5).await;
    let listed = expect_status(app.list_products("category=Electronics").await, StatusCode::OK).await;
    assert_eq!(ids(&listed["items"]), [newer["id"].as_str().unwrap(), id], "cheapest first");
    let stats = expect_status(app.health().await, StatusCode::OK).await;
    assert!(stats["cacheStats"]["hits"].as_u64().unwrap() >= 2, "{stats}");
}

#[tokio::test]
async fn a_listing_shows_availability_while_the_product_page_shows_exact_stock() {
    let (app, admin) = catalog_app().await;
    let product = app.product(&admin, "Lantern", "Electronics", 20.0, 5).await;
    let id = product["id"].as_str().unwrap();
    let (customer, _) = app.signed_up_customer().await;
    let listing = "/api/products?category=Electronics";
    let stock_listed = |page: &Value| page["items"][0]["stock"].clone();
    app.settled().await;
    app.read_until_cached(listing).await.expect("the listing is cached");
    let order = |quantity: u64| app.place_order(&customer, json!({"items": [{"productId": id, "quantity": quantity}]}));
    // An order that leaves stock keeps the cached listing: its stock is as
    // of the page's fill. The product's own page is exact.
    expect_status(order(2).await, StatusCode::CREATED).await;
    app.settled().await;
    assert_eq!(expect_status(app.get_product(id).await, StatusCode::OK).await["stock"], 3);
    let cached = app.read_until_cached(listing).await.expect("still cached after the order");
    assert_eq!(stock_listed(&cached), 5);
    // A sell-out empties the listings, so `inStock` and stock 0 show at once.
    expect_status(order(3).await, StatusCode::CREATED).await;
    app.settled().await;
    let page = expect_status(app.list_products("category=Electronics").await, StatusCode::OK).await;
    assert_eq!(stock_listed(&page), 0);
    let in_stock = expect_status(app.list_products("category=Electronics&inStock=true").await, StatusCode::OK).await;
    assert_eq!(in_stock["items"], json!([]));
    // A price change shows in the next listing read, cached or not.
    expect_status(app.update_product(&admin, id, json!({"price": 18.5, "stock": 4})).await, StatusCode::OK).await;
    let page = expect_status(app.list_products("category=Electronics").await, StatusCode::OK).await;
    assert_eq!((page["items"][0]["price"].clone(), stock_listed(&page)), (json!(18.5), json!(4)));
}

#[tokio::test]
async fn a_product_spread_over_counters_sells_exactly_its_stock_and_shows_sold_out() {
    let (app, admin) = catalog_app().await;
    let body = |counters: Value| json!({"name": "Flash Tee", "price": 15, "category": "Electronics", "stock": 6, "stockCounters": counters});
    for wrong in [json!(0), json!(33), json!(2.5), json!(-1)] {
        let refused = expect_error(app.create_product(&admin, body(wrong)).await, StatusCode::BAD_REQUEST).await;
        assert!(refused["details"]["stockCounters"].is_string(), "{refused}");
    }
    let created = expect_status(app.create_product(&admin, body(json!(4))).await, StatusCode::CREATED).await;
    assert_eq!((created["stock"].clone(), created["stockCounters"].clone()), (json!(6), json!(4)));
    let id = created["id"].as_str().unwrap().to_owned();
    let (first, _) = app.signed_up_customer().await;
    let (second, _) = app.signed_up_customer().await;
    let buyers = (0..10).map(|n| {
        let token = if n % 2 == 0 { first.clone() } else { second.clone() };
        let (app, id) = (&app, id.clone());
        async move { app.place_order(&token, json!({"items": [{"productId": id, "quantity": 1}]})).await.status() }
    });
    let answers = futures::future::join_all(buyers).await;
    let won = answers.iter().filter(|s| **s == StatusCode::CREATED).count();
    let sold_out = answers.iter().filter(|s| **s == StatusCode::CONFLICT).count();
    assert_eq!((won, sold_out), (6, 4), "{answers:?}");
    let page = expect_status(app.get_product(&id).await, StatusCode::OK).await;
    assert_eq!((page["stock"].clone(), page["stockCounters"].clone()), (json!(0), json!(4)));
    // The counters reaching zero are the product's sell-out in the listings.
    app.settled().await;
    let in_stock = expect_status(app.list_products("category=Electronics&inStock=true").await, StatusCode::OK).await;
    assert_eq!(in_stock["items"], json!([]));
    let refused = app.update_product(&admin, &id, json!({"stockCounters": 0})).await;
    expect_error(refused, StatusCode::BAD_REQUEST).await;
    let restocked = app.update_product(&admin, &id, json!({"stockDelta": 5})).await;
    assert_eq!(expect_status(restocked, StatusCode::OK).await["stock"], 5);
    let one = expect_status(app.update_product(&admin, &id, json!({"stockCounters": 1})).await, StatusCode::OK).await;
    assert_eq!((one["stock"].clone(), one["stockCounters"].clone()), (json!(5), json!(1)));
    app.settled().await;
    let in_stock = expect_status(app.list_products("category=Electronics&inStock=true").await, StatusCode::OK).await;
    assert_eq!(ids(&in_stock["items"]), [id]);
}

/// A catalog of 12 products to filter and page through.
async fn seeded() -> (TestApp, Vec<Value>) {
    let (app, admin) = catalog_app().await;
    let mut products = Vec::new();
    let specs: [(&str, &str, f64, u64); 12] = [
        ("Wireless Mouse", "Electronics", 25.0, 10),
        ("Gaming Laptop", "Electronics", 1299.99, 2),
        ("Laptop Stand", "Electronics", 39.5, 0),
        ("USB Cable", "Electronics", 5.0, 100),
        ("Rust Programming", "Books", 45.0, 7),
        ("Laptop Repair Guide", "Books", 19.99, 0),
        ("Wireless Charger", "Electronics", 25.0, 3),
        ("Cookbook", "Books", 30.0, 1),
        ("Monitor", "Electronics", 199.0, 4),
        ("Keyboard", "Electronics", 49.99, 0),
        ("Novel", "Books", 12.0, 9),
        ("Webcam", "Electronics", 60.0, 6),
    ];
    for (name, category, price, stock) in specs {
        products.push(app.product(&admin, name, category, price, stock).await);
    }
    // On DynamoDB the search index is written from the table's stream:
    // once the feed has settled, every product above is searchable.
    app.settled().await;
    (app, products)
}

/// Follows `nextCursor` to the end with `limit` per page; the ids in order.
async fn page_through(app: &TestApp, filters: &str, limit: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..50 {
        let mut query = format!("{filters}&limit={limit}");
        if let Some(cursor) = &cursor {
            query.push_str(&format!("&cursor={cursor}"));
        }
        let page = expect_status(app.list_products(&query).await, StatusCode::OK).await;
        let page_ids = ids(&page["items"]);
        assert!(page_ids.len() <= limit);
        seen.extend(page_ids);
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return seen,
        }
    }
    panic!("paging did not end");
}

fn names_of(products: &[Value], ids: &[String]) -> Vec<String> {
    ids.iter()
        .map(|id| products.iter().find(|p| p["id"] == id.as_str()).unwrap()["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn filters_alone_and_combined_select_the_right_products() {
    let (app, products) = seeded().await;
    let cases: [(&str, &[&str]); 9] = [
        ("category=books", &["Novel", "Laptop Repair Guide", "Cookbook", "Rust Programming"]),
        ("minPrice=100", &["Monitor", "Gaming Laptop"]),
        ("maxPrice=12", &["Novel", "USB Cable"]),
        ("minPrice=25&maxPrice=30", &["Cookbook", "Wireless Charger", "Wireless Mouse"]),
        ("inStock=false", &["Keyboard", "Laptop Repair Guide", "Laptop Stand"]),
        ("q=lap", &["Laptop Repair Guide", "Laptop Stand", "Gaming Laptop"]),
        ("q=WIRELESS", &["Wireless Charger", "Wireless Mouse"]),
        ("category=Electronics&q=laptop&inStock=true", &["Gaming Laptop"]),
        (
            "category=Electronics&minPrice=20&maxPrice=60&inStock=true",
            &["Wireless Mouse", "Wireless Charger", "Webcam"],
        ),
    ];
    for (filters, expected) in cases {
        let listed = page_through(&app, filters, 100).await;
        let mut names = names_of(&products, &listed);
        let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        if filters.contains("category=") {
            // Cheapest first (ties by creation): compare as given.
            assert_eq!(names, expected, "{filters}");
        } else {
            // Newest first: the reverse of creation order.
            names.sort();
            expected.sort();
            assert_eq!(names, expected, "{filters}");
        }
    }
    let empty = expect_status(app.list_products("category=Toys").await, StatusCode::OK).await;
    assert_eq!((empty["items"].clone(), empty["nextCursor"].clone()), (json!([]), Value::Null));
}

/// Polls the search `query` until `found` holds of its hits' names (10 s at
/// most: the index follows the table's stream on DynamoDB); how long it took.
async fn search_until(app: &TestApp, query: &str, found: impl Fn(&[String]) -> bool) -> Duration {
    let start = Instant::now();
    let mut names = Vec::new();
    while start.elapsed() < Duration::from_secs(10) {
        let page = expect_status(app.list_products(query).await, StatusCode::OK).await;
        names = page["items"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_owned()).collect();
        if found(&names) {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{query}: still {names:?} after 10 s");
}

#[tokio::test]
async fn search_follows_creation_renaming_and_deletion_without_stale_hits() {
    let (app, admin) = catalog_app().await;
    let product = app.product(&admin, "Quokka Lamp", "Electronics", 30.0, 3).await;
    let id = product["id"].as_str().unwrap();
    let created = search_until(&app, "q=quok", |names| names == ["Quokka Lamp"]).await;
    let renamed = json!({"name": "Wombat Lamp", "description": "A lamp shaped like a wombat."});
    expect_status(app.update_product(&admin, id, renamed).await, StatusCode::OK).await;
    let renaming = search_until(&app, "q=wombat+lamp", |names| names == ["Wombat Lamp"]).await;
    search_until(&app, "q=quokka", <[String]>::is_empty).await;
    expect_status(app.delete_product(&admin, id).await, StatusCode::NO_CONTENT).await;
    let deletion = search_until(&app, "q=lamp", <[String]>::is_empty).await;
    // What the index lags the product by here, for the docs' staleness row.
    eprintln!("searchable after: creation {created:?}, renaming {renaming:?}, deletion {deletion:?}");
}

#[tokio::test]
async fn paging_returns_every_product_exactly_once() {
    let (app, products) = seeded().await;
    let newest_first: Vec<String> = products.iter().rev().map(|p| p["id"].as_str().unwrap().to_owned()).collect();
    for limit in [1, 5, 12] {
        assert_eq!(page_through(&app, "", limit).await, newest_first, "limit {limit}");
    }
    let electronics = page_through(&app, "category=Electronics", 3).await;
    let prices: Vec<f64> = electronics
        .iter()
        .map(|id| products.iter().find(|p| p["id"] == id.as_str()).unwrap()["price"].as_f64().unwrap())
        .collect();
    assert_eq!(electronics.len(), 8);
    assert!(prices.windows(2).all(|w| w[0] <= w[1]), "{prices:?}");
    let default_page = expect_status(app.list_products("").await, StatusCode::OK).await;
    assert_eq!(default_page["items"].as_array().unwrap().len(), 12, "default limit 20");
}

#[tokio::test]
async fn bad_query_parameters_and_cursors_are_400() {
    let (app, _) = seeded().await;
    for query in [
        "limit=0",
        "limit=101",
        "limit=ten",
        "minPrice=-1",
        "minPrice=1.234",
        "maxPrice=abc",
        "inStock=yes",
        "minPrice=50&maxPrice=10",
        "sort=price",
        "q=",
        "q=%21%21",
        "category=",
    ] {
        let error = expect_error(app.list_products(query).await, StatusCode::BAD_REQUEST).await;
        assert!(error["details"].is_object(), "{query}: {error}");
    }
    let first = expect_status(app.list_products("limit=2").await, StatusCode::OK).await;
    let cursor = first["nextCursor"].as_str().unwrap();
    let mut tampered = cursor.to_owned();
    tampered.replace_range(0..1, if cursor.starts_with('A') { "B" } else { "A" });
    for bad in [tampered.as_str(), "garbage", "e30.AAAA"] {
        expect_error(app.list_products(&format!("limit=2&cursor={bad}")).await, StatusCode::BAD_REQUEST).await;
    }
    let other_filters = app.list_products(&format!("limit=2&inStock=true&cursor={cursor}")).await;
    expect_error(other_filters, StatusCode::BAD_REQUEST).await;
    expect_status(app.list_products(&format!("limit=3&cursor={cursor}")).await, StatusCode::OK).await;
}

#[tokio::test]
async fn the_catalog_works_uncached_when_the_cache_is_down() {
    let app = TestApp::spawn_with(&[("CACHE_URL", "redis://127.0.0.1:9")]).await;
    let (admin, _) = app.signed_up_admin().await;
    expect_status(app.create_category(&admin, "Books").await, StatusCode::CREATED).await;
    let product = app.product(&admin, "Atlas", "Books", 20.0, 2).await;
    let id = product["id"].as_str().unwrap();
    expect_status(app.update_product(&admin, id, json!({"price": 21.0})).await, StatusCode::OK).await;
    assert_eq!(expect_status(app.get_product(id).await, StatusCode::OK).await["price"], json!(21.0));
    let listed = expect_status(app.list_products("category=Books").await, StatusCode::OK).await;
    assert_eq!(ids(&listed["items"]), [id]);
    assert_eq!(expect_status(app.categories().await, StatusCode::OK).await["items"][0]["name"], "Books");
}
