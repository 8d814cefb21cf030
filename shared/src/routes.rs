//! The route table: every route of the API, once.
//!
//! The local gateway matches requests against it, each Lambda binary finds
//! its route in it by name, and tests hold `template.yaml` and `events/`
//! against it.

use std::collections::HashMap;

use crate::access::Access;
use crate::rate_limit::RateClass;

/// Identifies a handler; [`crate::handlers::dispatch`] maps it to code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RouteId {
    Health,
    AuthRegister,
    AuthLogin,
    AuthProfileGet,
    AuthProfileUpdate,
    AuthLogout,
    CategoriesList,
    CategoriesCreate,
    ProductsList,
    ProductsGet,
    ProductsCreate,
    ProductsUpdate,
    ProductsDelete,
    OrdersCreate,
    OrdersList,
    OrdersGet,
    OrdersItems,
    OrdersUpdateStatus,
    CartGet,
    CartItemsPut,
    CartItemsDelete,
    CartClear,
    Checkout,
    PaymentsCreate,
    PaymentsGet,
    PaymentsWebhook,
    UsersList,
    UsersGet,
    UsersUpdateRole,
    UsersUpdateStatus,
    EventsList,
    WebhooksCreate,
    WebhooksList,
    WebhooksGet,
    WebhooksDelete,
    WebhooksRotateSecret,
    WebhooksDeliveries,
    DocsPage,
    OpenApiDocument,
}

/// One route: what API Gateway matches, and the function that serves it.
#[derive(Debug, PartialEq, Eq)]
pub struct Route {
    pub id: RouteId,
    pub method: &'static str,
    /// API Gateway's path template, `{name}` for a parameter.
    pub path: &'static str,
    /// The Lambda function (and binary) name.
    pub function: &'static str,
    /// Who may call it; enforced before the handler runs.
    pub access: Access,
}

impl Route {
    /// API Gateway's route key, e.g. `POST /api/auth/login`.
    pub fn route_key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// The package of the route's binary: the API reference's functions
    /// are built apart, with the `docs` feature, so that only they carry
    /// its 1.9 MB of Swagger UI.
    pub fn package(&self) -> &'static str {
        match self.id {
            RouteId::DocsPage | RouteId::OpenApiDocument => "functions-docs",
            _ => "functions",
        }
    }

    /// The rate-limit budget the route draws from; `None` outside `/api`.
    pub fn rate_class(&self) -> Option<RateClass> {
        if self.path.starts_with("/api/auth/") {
            Some(RateClass::Auth)
        } else if self.path.starts_with("/api/") {
            Some(RateClass::General)
        } else {
            None
        }
    }
}

const fn route(id: RouteId, method: &'static str, path: &'static str, function: &'static str, access: Access) -> Route {
    Route { id, method, path, function, access }
}

/// Every route of the API, with who may call it.
pub static ROUTES: &[Route] = &[
    route(RouteId::Health, "GET", "/health", "health", Access::Public),
    route(RouteId::AuthRegister, "POST", "/api/auth/register", "auth-register", Access::Public),
    route(RouteId::AuthLogin, "POST", "/api/auth/login", "auth-login", Access::Public),
    route(RouteId::AuthProfileGet, "GET", "/api/auth/profile", "auth-profile-get", Access::User),
    route(RouteId::AuthProfileUpdate, "PUT", "/api/auth/profile", "auth-profile-update", Access::User),
    route(RouteId::AuthLogout, "POST", "/api/auth/logout", "auth-logout", Access::User),
    route(RouteId::CategoriesList, "GET", "/api/categories", "categories-list", Access::Public),
    route(RouteId::CategoriesCreate, "POST", "/api/categories", "categories-create", Access::Admin),
    route(RouteId::ProductsList, "GET", "/api/products", "products-list", Access::Public),
    route(RouteId::ProductsGet, "GET", "/api/products/{id}", "products-get", Access::Public),
    route(RouteId::ProductsCreate, "POST", "/api/products", "products-create", Access::Admin),
    route(RouteId::ProductsUpdate, "PUT", "/api/products/{id}", "products-update", Access::Admin),
    route(RouteId::ProductsDelete, "DELETE", "/api/products/{id}", "products-delete", Access::Admin),
    route(RouteId::OrdersCreate, "POST", "/api/orders", "orders-create", Access::User),
    route(RouteId::OrdersList, "GET", "/api/orders", "orders-list", Access::OwnerOrAdmin),
    route(RouteId::OrdersGet, "GET", "/api/orders/{id}", "orders-get", Access::OwnerOrAdmin),
    route(RouteId::OrdersItems, "GET", "/api/orders/{id}/items", "orders-items", Access::OwnerOrAdmin),
    route(RouteId::OrdersUpdateStatus, "PUT", "/api/orders/{id}/status", "orders-update-status", Access::OwnerOrAdmin),
    route(RouteId::CartGet, "GET", "/api/cart", "cart-get", Access::User),
    route(RouteId::CartItemsPut, "PUT", "/api/cart/items/{productId}", "cart-items-put", Access::User),
    route(RouteId::CartItemsDelete, "DELETE", "/api/cart/items/{productId}", "cart-items-delete", Access::User),
    route(RouteId::CartClear, "DELETE", "/api/cart", "cart-clear", Access::User),
    route(RouteId::Checkout, "POST", "/api/checkout", "checkout", Access::User),
    route(RouteId::PaymentsCreate, "POST", "/api/orders/{id}/payment", "payments-create", Access::User),
    route(RouteId::PaymentsGet, "GET", "/api/orders/{id}/payment", "payments-get", Access::OwnerOrAdmin),
    route(RouteId::PaymentsWebhook, "POST", "/api/payments/stripe/webhook", "payments-webhook", Access::Public),
    route(RouteId::UsersList, "GET", "/api/users", "users-list", Access::Admin),
    route(RouteId::UsersGet, "GET", "/api/users/{id}", "users-get", Access::Admin),
    route(RouteId::UsersUpdateRole, "PUT", "/api/users/{id}/role", "users-update-role", Access::Admin),
    route(RouteId::UsersUpdateStatus, "PUT", "/api/users/{id}/status", "users-update-status", Access::Admin),
    route(RouteId::EventsList, "GET", "/api/events", "events-list", Access::Admin),
    route(RouteId::WebhooksCreate, "POST", "/api/webhooks", "webhooks-create", Access::Admin),
    route(RouteId::WebhooksList, "GET", "/api/webhooks", "webhooks-list", Access::Admin),
    route(RouteId::WebhooksGet, "GET", "/api/webhooks/{id}", "webhooks-get", Access::Admin),
    route(RouteId::WebhooksDelete, "DELETE", "/api/webhooks/{id}", "webhooks-delete", Access::Admin),
    route(
        RouteId::WebhooksRotateSecret,
        "POST",
        "/api/webhooks/{id}/rotate-secret",
        "webhooks-rotate-secret",
        Access::Admin,
    ),
    route(RouteId::WebhooksDeliveries, "GET", "/api/webhooks/{id}/deliveries", "webhooks-deliveries", Access::Admin),
    route(RouteId::DocsPage, "GET", "/docs", "docs-page", Access::Public),
    route(RouteId::OpenApiDocument, "GET", "/openapi.yaml", "openapi-document", Access::Public),
];

/// The route serving the Lambda function `name`.
pub fn by_function(name: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|route| route.function == name)
}

/// What the table says about a method and path.
#[derive(Debug, PartialEq, Eq)]
pub enum RouteMatch {
    Found {
        route: &'static Route,
        params: HashMap<String, String>,
    },
    /// The path exists with other methods.
    MethodNotAllowed {
        allowed: Vec<&'static str>,
    },
    NotFound,
}

/// Matches like API Gateway: segment by segment, `{name}` matching any one
/// non-empty segment.
pub fn match_route(method: &str, path: &str) -> RouteMatch {
    let mut allowed = Vec::new();
    for route in ROUTES {
        let Some(params) = match_path(route.path, path) else { continue };
        if route.method.eq_ignore_ascii_case(method) {
            return RouteMatch::Found { route, params };
        }
        allowed.push(route.method);
    }
    if allowed.is_empty() { RouteMatch::NotFound } else { RouteMatch::MethodNotAllowed { allowed } }
}

fn match_path(template: &str, path: &str) -> Option<HashMap<String, String>> {
    let mut template_segments = template.trim_start_matches('/').split('/');
    let mut path_segments = path.trim_start_matches('/').split('/');
    let mut params = HashMap::new();
    loop {
        match (template_segments.next(), path_segments.next()) {
            (None, None) => return Some(params),
            (Some(expected), Some(actual)) => {
                if let Some(name) = expected.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    if actual.is_empty() {
                        return None;
                    }
                    params.insert(name.to_owned(), actual.to_owned());
                } else if expected != actual {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_and_route_keys_are_unique() {
        let mut functions: Vec<_> = ROUTES.iter().map(|r| r.function).collect();
        let mut keys: Vec<_> = ROUTES.iter().map(Route::route_key).collect();
        functions.sort();
        functions.dedup();
        keys.sort();
        keys.dedup();
        assert_eq!(functions.len(), ROUTES.len());
        assert_eq!(keys.len(), ROUTES.len());
    }

    #[test]
    fn a_path_matches_its_route_and_method() {
        match match_route("POST", "/api/auth/login") {
            RouteMatch::Found { route, params } => {
                assert_eq!(route.function, "auth-login");
                assert!(params.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_known_path_with_another_method_is_not_allowed() {
        assert_eq!(
            match_route("DELETE", "/api/auth/profile"),
            RouteMatch::MethodNotAllowed { allowed: vec!["GET", "PUT"] }
        );
    }

    #[test]
    fn unknown_paths_are_not_found() {
        for path in ["/", "/api", "/api/auth", "/api/auth/login/extra", "/healthz"] {
            assert_eq!(match_route("GET", path), RouteMatch::NotFound, "{path}");
        }
    }

    #[test]
    fn parameters_match_one_non_empty_segment() {
        let params = match_path("/api/orders/{id}/items", "/api/orders/42/items").unwrap();
        assert_eq!(params["id"], "42");
        assert!(match_path("/api/orders/{id}", "/api/orders/").is_none());
        assert!(match_path("/api/orders/{id}", "/api/orders/1/2").is_none());
    }

    #[test]
    fn auth_routes_draw_from_the_auth_budget() {
        assert_eq!(by_function("auth-login").unwrap().rate_class(), Some(RateClass::Auth));
        assert_eq!(by_function("health").unwrap().rate_class(), None);
    }
}
