//! Reading a JSON request body: size cap (413), content type (415), then
//! strict parsing (400, unknown fields included, through each wire type's
//! `#[serde(deny_unknown_fields)]`).

use lambda_http::{Body, Request};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// Parses the body of `request` as `T`.
pub fn parse_json<T: DeserializeOwned>(request: &Request, max_bytes: usize) -> Result<T, ApiError> {
    let bytes = body_bytes(request);
    if bytes.len() > max_bytes {
        return Err(ApiError::PayloadTooLarge { limit: max_bytes });
    }
    if !is_json(request) {
        return Err(ApiError::UnsupportedMediaType);
    }
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return Err(ApiError::bad_request("request body is empty; expected a JSON object")),
        // Every body of this API is an object; serde would also read a
        // struct from an array of its fields in order (`[1]` as
        // `{"quantity": 1}`), which no client means.
        Some(b'{') => {}
        Some(_) => return Err(ApiError::bad_request("request body must be a JSON object")),
    }
    serde_json::from_slice(bytes).map_err(describe)
}

/// True when the request has a body other than whitespace (routes whose
/// body is optional).
pub fn has_body(request: &Request) -> bool {
    match request.body() {
        Body::Text(text) => !text.trim().is_empty(),
        Body::Binary(bytes) => !bytes.iter().all(u8::is_ascii_whitespace),
        _ => false,
    }
}

/// The request's body as the client sent it (API Gateway's base64 bodies
/// arrive decoded); empty when there is none.
pub fn body_bytes(request: &Request) -> &[u8] {
    match request.body() {
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    }
}

/// `application/json` or a `+json` type, any parameters (charset).
fn is_json(request: &Request) -> bool {
    let Some(value) = request.headers().get(http::header::CONTENT_TYPE) else { return false };
    let Ok(value) = value.to_str() else { return false };
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Turns serde's message into a client error, naming the field when serde
/// does: `unknown field `role`` becomes `details: {"role": "unknown field"}`.
fn describe(err: serde_json::Error) -> ApiError {
    let message = err.to_string();
    let text = message.split(" at line ").next().unwrap_or(&message).to_owned();
    if let Some(field) = text.strip_prefix("unknown field `").and_then(|rest| rest.split('`').next()) {
        let mut details = Map::new();
        details.insert(field.to_owned(), Value::String("unknown field".into()));
        return ApiError::BadRequest { message: format!("unknown field `{field}`"), details: Some(details) };
    }
    if let Some(field) = text.strip_prefix("missing field `").and_then(|rest| rest.split('`').next()) {
        let mut details = Map::new();
        details.insert(field.to_owned(), Value::String("is required".into()));
        return ApiError::BadRequest { message: format!("missing field `{field}`"), details: Some(details) };
    }
    match err.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            ApiError::bad_request(format!("malformed JSON: {text}"))
        }
        _ => ApiError::bad_request(format!("invalid request body: {text}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Login {
        email: String,
        password: String,
    }

    fn request(content_type: Option<&str>, body: &str) -> Request {
        let mut builder = http::Request::builder();
        if let Some(content_type) = content_type {
            builder = builder.header("content-type", content_type);
        }
        builder.body(Body::Text(body.to_owned())).unwrap()
    }

    fn status_of(result: Result<Login, ApiError>) -> u16 {
        result.unwrap_err().status().as_u16()
    }

    #[test]
    fn a_valid_body_parses() {
        let body = r#"{"email":"a@b.co","password":"x"}"#;
        assert!(parse_json::<Login>(&request(Some("application/json; charset=utf-8"), body), 1024).is_ok());
    }

    #[test]
    fn each_kind_of_bad_body_gets_its_status() {
        let body = r#"{"email":"a@b.co","password":"x"}"#;
        assert_eq!(status_of(parse_json(&request(Some("application/json"), body), 10)), 413);
        assert_eq!(status_of(parse_json(&request(Some("text/plain"), body), 1024)), 415);
        assert_eq!(status_of(parse_json(&request(None, body), 1024)), 415);
        assert_eq!(status_of(parse_json(&request(Some("application/json"), "{\"email\":"), 1024)), 400);
        assert_eq!(status_of(parse_json(&request(Some("application/json"), "  "), 1024)), 400);
        assert_eq!(status_of(parse_json(&request(Some("application/json"), "[1,2]"), 1024)), 400);
        let fields_in_order = r#"["a@b.co","x"]"#;
        assert_eq!(status_of(parse_json(&request(Some("application/json"), fields_in_order), 1024)), 400);
    }

    #[test]
    fn an_unknown_field_is_named_in_the_details() {
        let body = r#"{"email":"a@b.co","password":"x","role":"admin"}"#;
        match parse_json::<Login>(&request(Some("application/json"), body), 1024).unwrap_err() {
            ApiError::BadRequest { details: Some(details), .. } => assert_eq!(details["role"], "unknown field"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_missing_field_is_named_in_the_details() {
        match parse_json::<Login>(&request(Some("application/json"), r#"{"email":"a@b.co"}"#), 1024).unwrap_err() {
            ApiError::BadRequest { details: Some(details), .. } => assert_eq!(details["password"], "is required"),
            other => panic!("unexpected {other:?}"),
        }
    }
}
