//! One async function per route. Each takes the [`App`], the caller the
//! route's access admitted (a [`Principal`], on protected routes) and the
//! request, and returns a response or an [`ApiError`]; [`dispatch`] maps
//! route ids to them. No handler checks tokens or roles: the pipeline did,
//! from the route table (see [`crate::access`]).

mod auth;
mod carts;
pub(crate) mod categories;
mod checkout;
#[cfg(feature = "docs")]
mod docs;
mod events;
mod health;
mod idempotency;
mod orders;
mod payments;
pub(crate) mod products;
mod query;
mod users;
mod views;
mod webhooks;

use lambda_http::{Body, Request, Response};

use crate::access::Principal;
use crate::app::App;
use crate::error::ApiError;
use crate::routes::RouteId;

/// Runs the handler of `route` for `caller`, whom the pipeline has already
/// admitted by the route's access.
pub async fn dispatch(
    app: &App,
    route: RouteId,
    caller: Option<Principal>,
    request: Request,
) -> Result<Response<Body>, ApiError> {
    match route {
        RouteId::Health => health::check(app).await,
        RouteId::AuthRegister => auth::register(app, request).await,
        RouteId::AuthLogin => auth::login(app, request).await,
        RouteId::AuthProfileGet => auth::profile(app, signed_in(caller)?).await,
        RouteId::AuthProfileUpdate => auth::update_profile(app, signed_in(caller)?, request).await,
        RouteId::AuthLogout => auth::logout(app, signed_in(caller)?).await,
        RouteId::CategoriesList => categories::list(app).await,
        RouteId::CategoriesCreate => categories::create(app, request).await,
        RouteId::ProductsList => products::list(app, request).await,
        RouteId::ProductsGet => products::get(app, request).await,
        RouteId::ProductsCreate => products::create(app, request).await,
        RouteId::ProductsUpdate => products::update(app, request).await,
        RouteId::ProductsDelete => products::delete(app, request).await,
        RouteId::OrdersCreate => orders::create(app, signed_in(caller)?, request).await,
        RouteId::OrdersList => orders::list(app, signed_in(caller)?, request).await,
        RouteId::OrdersGet => orders::get(app, signed_in(caller)?, request).await,
        RouteId::OrdersItems => orders::items(app, signed_in(caller)?, request).await,
        RouteId::OrdersUpdateStatus => orders::update_status(app, signed_in(caller)?, request).await,
        RouteId::CartGet => carts::get(app, signed_in(caller)?).await,
        RouteId::CartItemsPut => carts::put_item(app, signed_in(caller)?, request).await,
        RouteId::CartItemsDelete => carts::delete_item(app, signed_in(caller)?, request).await,
        RouteId::CartClear => carts::clear(app, signed_in(caller)?, request).await,
        RouteId::Checkout => checkout::checkout(app, signed_in(caller)?, request).await,
        RouteId::PaymentsCreate => payments::create(app, signed_in(caller)?, request).await,
        RouteId::PaymentsGet => payments::get(app, signed_in(caller)?, request).await,
        RouteId::PaymentsWebhook => payments::webhook(app, request).await,
        RouteId::UsersList => users::list(app, request).await,
        RouteId::UsersGet => users::get(app, request).await,
        RouteId::UsersUpdateRole => users::update_role(app, signed_in(caller)?, request).await,
        RouteId::UsersUpdateStatus => users::update_status(app, signed_in(caller)?, request).await,
        RouteId::EventsList => events::list(app, request).await,
        RouteId::WebhooksCreate => webhooks::create(app, request).await,
        RouteId::WebhooksList => webhooks::list(app, request).await,
        RouteId::WebhooksGet => webhooks::get(app, request).await,
        RouteId::WebhooksDelete => webhooks::delete(app, request).await,
        RouteId::WebhooksRotateSecret => webhooks::rotate_secret(app, request).await,
        RouteId::WebhooksDeliveries => webhooks::deliveries(app, request).await,
        #[cfg(feature = "docs")]
        RouteId::DocsPage => docs::page_response(&request),
        #[cfg(feature = "docs")]
        RouteId::OpenApiDocument => docs::document_response(),
        #[cfg(not(feature = "docs"))]
        RouteId::DocsPage | RouteId::OpenApiDocument => {
            Err(ApiError::NotFound("the API reference is served by the docs functions".into()))
        }
    }
}

/// The caller of a route whose handler needs one. A route declared
/// `public` whose handler needs a caller is a bug in the route table: it
/// fails closed (500), and the access walk test finds it.
fn signed_in(caller: Option<Principal>) -> Result<Principal, ApiError> {
    caller.ok_or_else(|| ApiError::Internal("a handler that needs a caller is declared public".into()))
}
