//! Compressed answers: gzip and brotli by `Accept-Encoding`, large JSON
//! bodies only, `Vary` always, ETags per coding.

use std::io::Read;

use reqwest::{Method, StatusCode};

use crate::helpers::{TestApp, expect_status};

/// A catalog whose first page is well over a kilobyte.
async fn stocked_app() -> TestApp {
    let app = TestApp::spawn().await;
    let (admin, _) = app.signed_up_admin().await;
    expect_status(app.create_category(&admin, "Bulk").await, StatusCode::CREATED).await;
    for n in 0..20 {
        app.product(&admin, &format!("Bulk item {n}"), "Bulk", 1.5, 10).await;
    }
    app
}

async fn get(
    app: &TestApp,
    path: &str,
    accept_encoding: Option<&str>,
    if_none_match: Option<&str>,
) -> reqwest::Response {
    let mut request = app.request(Method::GET, path);
    if let Some(coding) = accept_encoding {
        request = request.header("accept-encoding", coding);
    }
    if let Some(tag) = if_none_match {
        request = request.header("if-none-match", tag);
    }
    request.send().await.unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut plain).unwrap();
    plain
}

fn unbrotli(bytes: &[u8]) -> Vec<u8> {
    let mut plain = Vec::new();
    brotli::BrotliDecompress(&mut &bytes[..], &mut plain).unwrap();
    plain
}

#[tokio::test]
async fn a_large_listing_comes_gzipped_or_brotli_encoded_as_asked_and_decodes_to_the_plain_one() {
    let app = stocked_app().await;
    let plain = get(&app, "/api/products?limit=100", None, None).await;
    assert!(plain.headers().get("content-encoding").is_none());
    assert_eq!(plain.headers()["vary"], "Accept-Encoding");
    let plain = plain.bytes().await.unwrap();
    assert!(plain.len() > 1024, "{} bytes", plain.len());

    let gzipped = get(&app, "/api/products?limit=100", Some("gzip, deflate"), None).await;
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    assert_eq!(gunzip(&gzipped.bytes().await.unwrap()), plain);

    let brotli = get(&app, "/api/products?limit=100", Some("gzip;q=0.5, br"), None).await;
    assert_eq!(brotli.headers()["content-encoding"], "br");
    let encoded = brotli.bytes().await.unwrap();
    assert!(encoded.len() < plain.len() / 3, "{} of {} bytes", encoded.len(), plain.len());
    assert_eq!(unbrotli(&encoded), plain);

    let refused = get(&app, "/api/products?limit=100", Some("br;q=0, gzip;q=0"), None).await;
    assert!(refused.headers().get("content-encoding").is_none());
}

#[tokio::test]
async fn small_answers_go_out_plain() {
    let app = TestApp::spawn().await;
    let health = get(&app, "/health", Some("gzip, br"), None).await;
    assert!(health.headers().get("content-encoding").is_none());
    assert_eq!(health.headers()["vary"], "Accept-Encoding");
    let body: serde_json::Value = health.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn a_compressed_products_etag_names_its_coding_and_any_codings_tag_revalidates() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.signed_up_admin().await;
    expect_status(app.create_category(&admin, "Prose").await, StatusCode::CREATED).await;
    let long = serde_json::json!({"name": "Long Read", "description": "words ".repeat(300), "price": 5, "category": "Prose", "stock": 1});
    let product = expect_status(app.create_product(&admin, long).await, StatusCode::CREATED).await;
    let path = format!("/api/products/{}", product["id"].as_str().unwrap());

    let plain = get(&app, &path, None, None).await;
    let plain_tag = plain.headers()["etag"].to_str().unwrap().to_owned();
    let gzipped = get(&app, &path, Some("gzip"), None).await;
    let gzip_tag = gzipped.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(gzip_tag, format!("{}-gzip\"", plain_tag.trim_end_matches('"')));

    let revalidated = get(&app, &path, Some("gzip"), Some(&gzip_tag)).await;
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(revalidated.headers()["etag"], gzip_tag.as_str());
    let across = get(&app, &path, Some("br"), Some(&plain_tag)).await;
    assert_eq!(across.status(), StatusCode::NOT_MODIFIED, "the plain tag names the same product");
    let changed = serde_json::json!({"price": 6});
    expect_status(app.update_product(&admin, product["id"].as_str().unwrap(), changed).await, StatusCode::OK).await;
    let stale = get(&app, &path, Some("gzip"), Some(&gzip_tag)).await;
    assert_eq!(stale.status(), StatusCode::OK);
}
