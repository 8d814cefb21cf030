//! The API Gateway stand-in: HTTP request in, HTTP API (payload 2.0) event
//! to the handler, handler response out.
//!
//! Going through the event JSON and `lambda_http::request::from_str`, the
//! very conversion the Lambda runtime uses, means a handler sees locally
//! exactly what it sees in AWS: path and query parameters, the source IP
//! from the TCP peer (never from a header), a request id.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::request::Parts;
use serde_json::{Map, Value, json};
use shop::ApiError;
use shop::App;
use shop::http::{apply_standard_headers, preflight};
use shop::routes::{Route, RouteMatch, match_route};

/// Serves any request: route it, or answer 404 / 405 / 413 / CORS itself.
pub async fn handle(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = request.into_parts();
    let (route, params) = match match_route(parts.method.as_str(), parts.uri.path()) {
        RouteMatch::Found { route, params } => (route, params),
        _ if parts.method == http::Method::OPTIONS => return local_response(preflight(), &app, &request_id),
        RouteMatch::MethodNotAllowed { allowed } => {
            return local_response(ApiError::MethodNotAllowed { allowed }.to_response(), &app, &request_id);
        }
        RouteMatch::NotFound => {
            let missing = ApiError::NotFound(format!("no route for {} {}", parts.method, parts.uri.path()));
            return local_response(missing.to_response(), &app, &request_id);
        }
    };
    // Read one byte past the cap, so an oversized body is told apart from
    // one exactly at the cap without buffering all of it.
    let limit = app.config.max_body_bytes;
    let Ok(body) = axum::body::to_bytes(body, limit + 1).await else {
        return local_response(ApiError::PayloadTooLarge { limit }.to_response(), &app, &request_id);
    };
    if body.len() > limit {
        return local_response(ApiError::PayloadTooLarge { limit }.to_response(), &app, &request_id);
    }
    let event = to_event(&parts, &body, route, params, peer, &request_id);
    let lambda_request = match lambda_http::request::from_str(&event.to_string()) {
        Ok(request) => request,
        Err(err) => {
            let refused =
                ApiError::bad_request(format!("request cannot be represented as an API Gateway event: {err}"));
            return local_response(refused.to_response(), &app, &request_id);
        }
    };
    into_axum(app.handle(route, lambda_request).await)
}

fn local_response(mut response: lambda_http::Response<lambda_http::Body>, app: &App, request_id: &str) -> Response {
    apply_standard_headers(&mut response, request_id, &app.config.cors_allow_origin);
    into_axum(response)
}

fn into_axum(response: lambda_http::Response<lambda_http::Body>) -> Response {
    let (parts, body) = response.into_parts();
    let bytes = match body {
        lambda_http::Body::Text(text) => text.into_bytes(),
        lambda_http::Body::Binary(bytes) => bytes,
        _ => Vec::new(),
    };
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// The event an HTTP API would send the function for this request.
fn to_event(
    parts: &Parts,
    body: &[u8],
    route: &Route,
    params: std::collections::HashMap<String, String>,
    peer: SocketAddr,
    request_id: &str,
) -> Value {
    // HTTP API lower-cases header names and joins repeated headers with
    // commas; cookies travel apart, in `cookies`.
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies = Vec::new();
    for (name, value) in &parts.headers {
        let Ok(value) = value.to_str() else { continue };
        if name == http::header::COOKIE {
            cookies.extend(value.split(';').map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()));
            continue;
        }
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push(',');
                v.push_str(value)
            })
            .or_insert_with(|| value.to_owned());
    }
    let raw_query = parts.uri.query().unwrap_or("");
    let mut query: BTreeMap<String, String> = BTreeMap::new();
    for (key, value) in form_urlencoded::parse(raw_query.as_bytes()) {
        query
            .entry(key.into_owned())
            .and_modify(|v| {
                v.push(',');
                v.push_str(&value)
            })
            .or_insert_with(|| value.into_owned());
    }
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    let mut event = json!({
        "version": "2.0",
        "routeKey": route.route_key(),
        "rawPath": parts.uri.path(),
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "local",
            "apiId": "local",
            "domainName": headers.get("host").cloned().unwrap_or_else(|| "127.0.0.1".into()),
            "domainPrefix": "local",
            "requestId": request_id,
            "routeKey": route.route_key(),
            "stage": "$default",
            "timeEpoch": now_ms,
            "http": {
                "method": parts.method.as_str(),
                "path": parts.uri.path(),
                "protocol": format!("{:?}", parts.version),
                "sourceIp": peer.ip().to_string(),
                "userAgent": headers.get("user-agent").cloned().unwrap_or_default(),
            },
        },
        "isBase64Encoded": false,
    });
    let fields = event.as_object_mut().expect("the event is an object");
    if !cookies.is_empty() {
        fields.insert("cookies".into(), json!(cookies));
    }
    if !query.is_empty() {
        fields.insert("queryStringParameters".into(), json!(query));
    }
    if !params.is_empty() {
        fields.insert(
            "pathParameters".into(),
            Value::Object(params.into_iter().map(|(k, v)| (k, Value::String(v))).collect::<Map<_, _>>()),
        );
    }
    if !body.is_empty() {
        match std::str::from_utf8(body) {
            Ok(text) => fields.insert("body".into(), Value::String(text.to_owned())),
            Err(_) => {
                fields.insert("isBase64Encoded".into(), Value::Bool(true));
                fields.insert("body".into(), Value::String(STANDARD.encode(body)))
            }
        };
    }
    event
}
