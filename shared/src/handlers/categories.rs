//! `GET /api/categories` (anyone, cached 10 min) and `POST /api/categories`
//! (admin).

use std::time::Duration;

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use time::OffsetDateTime;

use super::views::CategoryView;
use crate::app::App;
use crate::cache::generational::Lookup;
use crate::domain::{Category, CategoryName, Description, FieldErrors};
use crate::error::ApiError;
use crate::http::{json, json_bytes, parse_json};
use crate::store::StoreError;

pub const CACHE_SCOPE: &str = "categories";
const CACHE_TTL: Duration = Duration::from_secs(600);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCategory {
    name: String,
    #[serde(default)]
    description: Option<String>,
}

pub async fn list(app: &App) -> Result<Response<Body>, ApiError> {
    let body = match app.catalog_cache.get(CACHE_SCOPE, "all").await {
        Lookup::Hit(body) => body,
        Lookup::Miss { generation } => {
            let categories = app.store.categories().await?;
            let views: Vec<CategoryView> = categories.iter().map(CategoryView::from).collect();
            let body = serde_json::to_vec(&serde_json::json!({ "items": views }))
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            if let Some(generation) = generation {
                app.catalog_cache.fill(CACHE_SCOPE, &generation, "all", &body, CACHE_TTL);
            }
            body
        }
    };
    json_bytes(StatusCode::OK, body)
}

pub async fn create(app: &App, request: Request) -> Result<Response<Body>, ApiError> {
    let body: NewCategory = parse_json(&request, app.config.max_body_bytes)?;
    let mut errors = FieldErrors::new();
    let name = errors.check("name", CategoryName::parse(&body.name));
    let description = errors.check("description", Description::parse(body.description.as_deref().unwrap_or("")));
    let (Some(name), Some(description)) = (name, description) else { return Err(errors.into()) };
    let category = Category { id: uuid::Uuid::now_v7(), name, description, created_at: OffsetDateTime::now_utc() };
    app.store.create_category(&category).await.map_err(|err| match err {
        StoreError::CategoryTaken => ApiError::Conflict("category already exists".into()),
        other => other.into(),
    })?;
    app.catalog_cache.invalidate(CACHE_SCOPE).await;
    tracing::info!(category = category.name.as_str(), event = "category_created", "category created");
    json(StatusCode::CREATED, &CategoryView::from(&category))
}
