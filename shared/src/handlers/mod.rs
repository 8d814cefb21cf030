//! One async function per route. Each takes the [`App`] and the request and
//! returns a response or an [`ApiError`]; [`dispatch`] maps route ids to them.

mod auth;
mod categories;
mod health;
mod orders;
mod products;
mod query;
mod views;

use lambda_http::{Body, Request, Response};

use crate::app::App;
use crate::error::ApiError;
use crate::routes::RouteId;

/// Runs the handler of `route`.
pub async fn dispatch(app: &App, route: RouteId, request: Request) -> Result<Response<Body>, ApiError> {
    match route {
        RouteId::Health => health::check(app).await,
        RouteId::AuthRegister => auth::register(app, request).await,
        RouteId::AuthLogin => auth::login(app, request).await,
        RouteId::AuthProfileGet => auth::profile(app, request).await,
        RouteId::AuthProfileUpdate => auth::update_profile(app, request).await,
        RouteId::AuthLogout => auth::logout(app, request).await,
        RouteId::CategoriesList => categories::list(app).await,
        RouteId::CategoriesCreate => categories::create(app, request).await,
        RouteId::ProductsList => products::list(app, request).await,
        RouteId::ProductsGet => products::get(app, request).await,
        RouteId::ProductsCreate => products::create(app, request).await,
        RouteId::ProductsUpdate => products::update(app, request).await,
        RouteId::ProductsDelete => products::delete(app, request).await,
        RouteId::OrdersCreate => orders::create(app, request).await,
        RouteId::OrdersList => orders::list(app, request).await,
        RouteId::OrdersGet => orders::get(app, request).await,
        RouteId::OrdersItems => orders::items(app, request).await,
        RouteId::OrdersUpdateStatus => orders::update_status(app, request).await,
    }
}
