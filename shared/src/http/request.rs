//! What the API Gateway (or the local gateway) tells a function about a
//! request, beyond the HTTP message itself.

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

/// Facts about the request the handlers and the pipeline use.
#[derive(Clone, Debug)]
pub struct RequestMeta {
    /// API Gateway's request id (`requestContext.requestId`), the key that
    /// ties log lines of one request together.
    pub request_id: String,
    /// The TCP peer as API Gateway saw it (`requestContext.http.sourceIp`).
    /// Never taken from a header, which any client can set.
    pub source_ip: String,
}

impl RequestMeta {
    pub fn of(request: &Request) -> Self {
        let (request_id, source_ip) = match request.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(context)) => (context.request_id.clone(), context.http.source_ip.clone()),
            _ => (None, None),
        };
        RequestMeta {
            request_id: request_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            source_ip: source_ip.unwrap_or_else(|| "unknown".into()),
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header. The scheme is
/// case-insensitive (RFC 7235).
pub fn bearer_token(request: &Request) -> Option<&str> {
    let value = request.headers().get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A path parameter API Gateway extracted (`{id}` in the route).
pub fn path_param<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.path_parameters_ref()?.first(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_authorization(value: &str) -> Request {
        http::Request::builder().header("authorization", value).body(lambda_http::Body::Empty).unwrap()
    }

    #[test]
    fn a_bearer_token_is_found_whatever_the_scheme_case() {
        assert_eq!(bearer_token(&with_authorization("Bearer abc.def.ghi")), Some("abc.def.ghi"));
        assert_eq!(bearer_token(&with_authorization("bearer  abc")), Some("abc"));
    }

    #[test]
    fn other_schemes_and_empty_tokens_are_ignored() {
        assert_eq!(bearer_token(&with_authorization("Basic dXNlcjpwdw==")), None);
        assert_eq!(bearer_token(&with_authorization("Bearer ")), None);
        assert_eq!(bearer_token(&with_authorization("Bearer")), None);
    }

    #[test]
    fn a_request_without_context_still_gets_an_id() {
        let meta = RequestMeta::of(&with_authorization(""));
        assert_eq!(meta.source_ip, "unknown");
        assert!(uuid::Uuid::parse_str(&meta.request_id).is_ok());
    }
}
