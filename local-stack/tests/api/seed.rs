//! `shop-local seed`: a realistic demo shop, seeded once, topped up after.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{ADMIN_EMAIL, TestApp, expect_status};
use crate::users::stdout_of;

/// Every product, paged through.
async fn all_products(app: &TestApp) -> Vec<Value> {
    let mut products = Vec::new();
    let mut query = "limit=100".to_owned();
    loop {
        let page = expect_status(app.list_products(&query).await, StatusCode::OK).await;
        products.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["nextCursor"].as_str() {
            Some(cursor) => query = format!("limit=100&cursor={cursor}"),
            None => return products,
        }
    }
}

#[tokio::test]
async fn seeding_makes_a_varied_catalog_two_accounts_and_a_cart_once_and_tops_up_after() {
    let mut app = TestApp::spawn().await;
    let output = app.command(&["seed"]).await;
    assert!(output.status.success(), "{}", stdout_of(&output));
    let report = stdout_of(&output);
    assert!(report.contains("Seeded 6 categories and 240 products"), "{report}");

    let categories = expect_status(app.categories().await, StatusCode::OK).await;
    assert_eq!(categories["items"].as_array().unwrap().len(), 6);
    let products = all_products(&app).await;
    assert_eq!(products.len(), 240);
    let sold_out = products.iter().filter(|p| p["stock"] == 0).count();
    assert!((5..60).contains(&sold_out), "{sold_out} sold out");
    let mut prices: Vec<f64> = products.iter().map(|p| p["price"].as_f64().unwrap()).collect();
    prices.sort_by(f64::total_cmp);
    assert!(prices[0] < 20.0 && prices[prices.len() - 1] > 200.0, "{} to {}", prices[0], prices[prices.len() - 1]);
    let mut names: Vec<&str> = products.iter().map(|p| p["name"].as_str().unwrap()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 240, "names are distinct");

    // The admin is ADMIN_EMAILS's first address, with the printed password.
    let admin = app.token_for(ADMIN_EMAIL, "admin-demo-password").await;
    let profile = expect_status(app.profile(&admin).await, StatusCode::OK).await;
    assert_eq!(profile["user"]["role"], "admin");
    // The customer has a cart of in-stock products, ready to check out.
    let customer = app.token_for("customer@shop.local", "customer-demo-password").await;
    let cart = expect_status(app.cart(&customer).await, StatusCode::OK).await;
    let lines = cart["items"].as_array().unwrap();
    assert_eq!((lines.len(), cart["itemCount"].as_u64()), (3, Some(4)), "{cart}");
    assert!(lines.iter().all(|line| line["available"] == true), "{cart}");
    assert!(report.contains("with a cart"), "{report}");

    let again = app.command(&["seed"]).await;
    assert!(stdout_of(&again).contains("already seeded"), "{}", stdout_of(&again));
    assert_eq!(all_products(&app).await.len(), 240, "no duplicates");

    let gone = products[0]["id"].as_str().unwrap();
    let admin = app.token_for(ADMIN_EMAIL, "admin-demo-password").await;
    expect_status(app.delete_product(&admin, gone).await, StatusCode::NO_CONTENT).await;
    let topped_up = app.command(&["seed"]).await;
    assert!(stdout_of(&topped_up).contains("Seeded 0 categories and 1 products"), "{}", stdout_of(&topped_up));
    assert_eq!(all_products(&app).await.len(), 240);
}
