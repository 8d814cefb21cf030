//! The catalog half of the store port's contract, run against every adapter.

mod common;

use std::sync::Arc;

use shop::domain::catalog::MAX_STOCK;
use shop::domain::{
    Category, CategoryName, Description, Money, Product, ProductId, ProductName, ProductQuery, SearchTerms, StockChange,
};
use shop::store::{ProductUpdate, Store, StoreError};
use time::OffsetDateTime;

fn category(name: &str) -> Category {
    Category {
        id: uuid::Uuid::now_v7(),
        name: CategoryName::parse(name).unwrap(),
        description: Description::parse("things").unwrap(),
        created_at: OffsetDateTime::now_utc().replace_nanosecond(0).unwrap(),
    }
}

fn product(name: &str, category: &str, price: u64, stock: u64) -> Product {
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    Product {
        id: ProductId::new(),
        name: ProductName::parse(name).unwrap(),
        description: Description::parse(&format!("All about the {name}.")).unwrap(),
        price: Money::from_minor(price),
        category: CategoryName::parse(category).unwrap(),
        stock,
        stock_counters: 1,
        created_at: now,
        updated_at: now,
    }
}

fn update_of(product: &Product, stock: StockChange) -> ProductUpdate {
    common::product_update(product, stock, product.stock_counters)
}

async fn categories_are_unique_case_insensitively_and_listed_by_name(store: Arc<dyn Store>) {
    for name in ["Garden", "books", "Electronics"] {
        store.create_category(&category(name)).await.unwrap();
    }
    let result = store.create_category(&category("BOOKS")).await;
    assert!(matches!(result, Err(StoreError::CategoryTaken)), "{result:?}");
    let names: Vec<String> = store.categories().await.unwrap().iter().map(|c| c.name.as_str().to_owned()).collect();
    assert_eq!(names, ["books", "Electronics", "Garden"]);
    let found = store.category_by_key("electronics").await.unwrap().unwrap();
    assert_eq!(found.name.as_str(), "Electronics");
    assert!(store.category_by_key("toys").await.unwrap().is_none());
}

async fn a_product_is_created_read_updated_and_deleted(store: Arc<dyn Store>) {
    let lamp = product("Desk Lamp", "Home", 2_499, 5);
    store.create_product(&lamp).await.unwrap();
    assert_eq!(store.product_by_id(lamp.id).await.unwrap().as_ref(), Some(&lamp));

    let mut update = update_of(&lamp, StockChange::Set(9));
    update.name = ProductName::parse("Desk Lamp XL").unwrap();
    update.price = Money::from_minor(2_999);
    update.category = CategoryName::parse("Office").unwrap();
    let updated = store.update_product(&update).await.unwrap();
    assert_eq!((updated.name.as_str(), updated.price.minor(), updated.stock), ("Desk Lamp XL", 2_999, 9));
    assert_eq!(updated.created_at, lamp.created_at);
    assert_eq!(store.product_by_id(lamp.id).await.unwrap(), Some(updated));

    let home = ProductQuery { category: Some("home".into()), limit: 10, ..Default::default() };
    assert!(store.list_products(&home).await.unwrap().items.is_empty(), "moved out of its old category");
    let office = ProductQuery { category: Some("office".into()), limit: 10, ..Default::default() };
    assert_eq!(store.list_products(&office).await.unwrap().items.len(), 1);

    store.delete_product(lamp.id).await.unwrap();
    assert!(store.product_by_id(lamp.id).await.unwrap().is_none());
    assert!(store.list_products(&office).await.unwrap().items.is_empty());
    assert!(matches!(store.delete_product(lamp.id).await, Err(StoreError::NotFound)));
    assert!(matches!(store.update_product(&update).await, Err(StoreError::NotFound)));
}

async fn stock_adjustments_are_atomic_and_never_go_below_zero(store: Arc<dyn Store>) {
    let mug = product("Mug", "Kitchen", 900, 10);
    store.create_product(&mug).await.unwrap();
    assert_eq!(store.update_product(&update_of(&mug, StockChange::Adjust(5))).await.unwrap().stock, 15);
    let refused = store.update_product(&update_of(&mug, StockChange::Adjust(-16))).await;
    assert!(matches!(refused, Err(StoreError::InsufficientStock(ref ids)) if ids == &[mug.id]), "{refused:?}");
    assert_eq!(store.product_by_id(mug.id).await.unwrap().unwrap().stock, 15);
    let full = store.update_product(&update_of(&mug, StockChange::Set(MAX_STOCK - 5))).await.unwrap();
    assert_eq!(full.stock, MAX_STOCK - 5);
    let refused = store.update_product(&update_of(&mug, StockChange::Adjust(6))).await;
    assert!(matches!(refused, Err(StoreError::StockAboveMaximum)), "{}: {refused:?}", store.kind());
    assert_eq!(store.update_product(&update_of(&mug, StockChange::Adjust(5))).await.unwrap().stock, MAX_STOCK);
    store.update_product(&update_of(&mug, StockChange::Set(15))).await.unwrap();

    // 30 concurrent removals of one unit from 15: exactly 15 succeed.
    let removals = (0..30).map(|_| {
        let (store, update) = (Arc::clone(&store), update_of(&mug, StockChange::Adjust(-1)));
        async move { store.update_product(&update).await }
    });
    let results = futures::future::join_all(removals).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 15);
    assert!(results.iter().all(|r| r.is_ok() || matches!(r, Err(StoreError::InsufficientStock(_)))));
    assert_eq!(store.product_by_id(mug.id).await.unwrap().unwrap().stock, 0);
}

/// Every page of `query`, followed to the end.
async fn all_pages(store: &Arc<dyn Store>, mut query: ProductQuery) -> Vec<Product> {
    let mut all = Vec::new();
    for _ in 0..100 {
        let page = store.list_products(&query).await.unwrap();
        assert!(page.items.len() <= query.limit);
        all.extend(page.items);
        match page.next {
            Some(next) => query.after = Some(next),
            None => return all,
        }
    }
    panic!("listing did not end");
}

async fn paging_returns_every_match_exactly_once_in_order(store: Arc<dyn Store>) {
    let mut catalog = Vec::new();
    for i in 0..23u64 {
        let category = if i % 3 == 0 { "Books" } else { "Electronics" };
        let name = if i % 4 == 0 { format!("Wireless Speaker {i}") } else { format!("Cable Model {i}") };
        // Repeated prices, so ties are ordered by id.
        let product = product(&name, category, 500 + (i % 7) * 250, i % 5);
        store.create_product(&product).await.unwrap();
        catalog.push(product);
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    // The DynamoDB search index follows the table's stream; rebuilding it
    // brings it up to date at once (the embedded one always is).
    store.rebuild_search_index().await.unwrap();
    let money = |minor| Some(Money::from_minor(minor));
    let queries = [
        ProductQuery::default(),
        ProductQuery { category: Some("electronics".into()), ..Default::default() },
        ProductQuery {
            category: Some("electronics".into()),
            min_price: money(750),
            max_price: money(1250),
            ..Default::default()
        },
        ProductQuery { min_price: money(1000), ..Default::default() },
        ProductQuery { max_price: money(750), in_stock: Some(true), ..Default::default() },
        ProductQuery { in_stock: Some(false), ..Default::default() },
        ProductQuery { terms: SearchTerms::parse("wire SPEAK").unwrap(), ..Default::default() },
        ProductQuery {
            category: Some("books".into()),
            terms: SearchTerms::parse("cable").unwrap(),
            in_stock: Some(true),
            ..Default::default()
        },
        ProductQuery { category: Some("toys".into()), ..Default::default() },
    ];
    for query in queries {
        let mut expected: Vec<Product> = catalog.iter().filter(|p| query.matches(p)).cloned().collect();
        match query.category {
            Some(_) => expected.sort_by_key(|p| (p.price, p.id)),
            None => expected.sort_by_key(|p| std::cmp::Reverse(p.id)),
        }
        for limit in [1, 4, 100] {
            let listed = all_pages(&store, ProductQuery { limit, ..query.clone() }).await;
            let ids = |products: &[Product]| products.iter().map(|p| p.id).collect::<Vec<_>>();
            assert_eq!(ids(&listed), ids(&expected), "{query:?} limit {limit}");
        }
    }
}

store_contract!(
    categories_are_unique_case_insensitively_and_listed_by_name,
    a_product_is_created_read_updated_and_deleted,
    stock_adjustments_are_atomic_and_never_go_below_zero,
    paging_returns_every_match_exactly_once_in_order,
);
