//! The search index's contract, on both stores: a search reads its leading
//! word's entries, finds every match exactly once in the listing's order,
//! examines a bounded number of entries a page, and never shows a hit a
//! product no longer has once the index caught up (on DynamoDB, through the
//! table's stream; on either, through `rebuild_search_index`).

mod common;

use std::sync::Arc;

use shop::domain::search::MAX_EXAMINED;
use shop::domain::{
    CategoryName, Description, ListPosition, Money, Product, ProductId, ProductName, ProductQuery, SearchTerms,
    StockChange,
};
use shop::events::poller::StreamPoller;
use shop::store::{ProductUpdate, Store};
use time::OffsetDateTime;

fn product(name: &str, description: &str, category: &str, price: u64, stock: u64) -> Product {
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    Product {
        id: ProductId::new(),
        name: ProductName::parse(name).unwrap(),
        description: Description::parse(description).unwrap(),
        price: Money::from_minor(price),
        category: CategoryName::parse(category).unwrap(),
        stock,
        stock_counters: 1,
        created_at: now,
        updated_at: now,
    }
}

fn search(q: &str) -> ProductQuery {
    ProductQuery { terms: SearchTerms::parse(q).unwrap(), limit: 20, ..Default::default() }
}

fn update(product: &Product, name: &str, stock: StockChange) -> ProductUpdate {
    ProductUpdate {
        id: product.id,
        name: ProductName::parse(name).unwrap(),
        description: product.description.clone(),
        price: product.price,
        category: product.category.clone(),
        stock,
        stock_counters: product.stock_counters,
        updated_at: OffsetDateTime::now_utc().replace_nanosecond(0).unwrap(),
    }
}

/// Every page of `query`, followed to the end.
async fn all_pages(store: &Arc<dyn Store>, mut query: ProductQuery) -> Vec<Product> {
    let mut all = Vec::new();
    for _ in 0..200 {
        let page = store.list_products(&query).await.unwrap();
        all.extend(page.items);
        match page.next {
            Some(next) => query.after = Some(next),
            None => return all,
        }
    }
    panic!("search did not end");
}

fn ids(products: &[Product]) -> Vec<ProductId> {
    products.iter().map(|p| p.id).collect()
}

/// The oldest product has the rare word; 60 newer ones share the common.
async fn catalog(store: &Arc<dyn Store>) -> Vec<Product> {
    let mut all = vec![product("Common Rarity Lamp", "Brass.", "Home", 4_000, 2)];
    for i in 0..60u64 {
        let category = if i % 2 == 0 { "Home" } else { "Garden" };
        all.push(product(&format!("Common Tool {i}"), "Steel and oak.", category, 500 + (i % 6) * 500, i % 4));
    }
    for product in &all {
        store.create_product(product).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    store.rebuild_search_index().await.unwrap();
    all
}

async fn a_search_finds_every_match_once_in_order_and_the_first_match_first(store: Arc<dyn Store>) {
    let all = catalog(&store).await;
    let money = |minor| Some(Money::from_minor(minor));
    let queries = [
        search("rarity"),
        search("common rarity"),
        search("COMMON"),
        search("co st"),
        search("absent"),
        search("common absent"),
        ProductQuery { category: Some("home".into()), ..search("common") },
        ProductQuery {
            category: Some("garden".into()),
            min_price: money(1000),
            max_price: money(2000),
            ..search("tool")
        },
        ProductQuery { in_stock: Some(true), ..search("tool") },
        ProductQuery { in_stock: Some(false), min_price: money(1500), ..search("oak") },
        ProductQuery { category: Some("home".into()), in_stock: Some(true), ..search("common steel") },
    ];
    for query in queries {
        let mut expected: Vec<Product> = all.iter().filter(|p| query.matches(p)).cloned().collect();
        match query.category {
            Some(_) => expected.sort_by_key(|p| (p.price, p.id)),
            None => expected.sort_by_key(|p| std::cmp::Reverse(p.id)),
        }
        for limit in [1, 7, 100] {
            let query = ProductQuery { limit, ..query.clone() };
            assert_eq!(ids(&all_pages(&store, query.clone()).await), ids(&expected), "{query:?}");
            let first = store.list_products(&query).await.unwrap();
            let shown = expected.len().min(limit);
            assert_eq!(ids(&first.items), ids(&expected[..shown]), "{query:?}: the first page holds the first matches");
            assert_eq!(first.next.is_some(), expected.len() > limit, "{query:?}: a cursor only while matches remain");
        }
    }
}

/// 250 entries that a filter rejects before the one it keeps: the first
/// page stops after the budget with a cursor, and the match follows; the
/// same product found by a rarer word at once.
async fn a_page_examines_a_bounded_number_of_entries(store: Arc<dyn Store>) {
    const { assert!(MAX_EXAMINED < 250, "more rejected entries than one page examines") };
    let kept = product("Bulk Zq", "", "Home", 100, 0);
    store.create_product(&kept).await.unwrap();
    for i in 0..250 {
        store.create_product(&product(&format!("Bulk Box {i}"), "", "Home", 100, 5)).await.unwrap();
    }
    store.rebuild_search_index().await.unwrap();
    let query = ProductQuery { in_stock: Some(false), ..search("bulk") };
    let first = store.list_products(&query).await.unwrap();
    assert!(first.items.is_empty(), "the one match is past the budget");
    let Some(ListPosition::Newest { .. }) = first.next else { panic!("a cursor to go on from") };
    assert_eq!(ids(&all_pages(&store, query).await), [kept.id]);
    // A rare word among common ones leads once its short list is counted,
    // even though it is the shorter word.
    let rare = store.list_products(&search("bulk zq")).await.unwrap();
    assert_eq!((ids(&rare.items), rare.next), (vec![kept.id], None));
}

async fn a_rebuild_leaves_no_stale_hit(store: Arc<dyn Store>) {
    let lamp = product("Brass Lamp", "", "Home", 100, 3);
    let rake = product("Garden Rake", "", "Garden", 100, 3);
    store.create_product(&lamp).await.unwrap();
    store.create_product(&rake).await.unwrap();
    store.update_product(&update(&lamp, "Copper Lamp", StockChange::Set(9))).await.unwrap();
    store.delete_product(rake.id).await.unwrap();
    assert_eq!(store.rebuild_search_index().await.unwrap(), 1);
    assert!(store.list_products(&search("brass")).await.unwrap().items.is_empty(), "the old name is gone");
    assert!(store.list_products(&search("rake")).await.unwrap().items.is_empty(), "the deleted product is gone");
    let found = store.list_products(&search("copp lamp")).await.unwrap().items;
    assert_eq!((ids(&found), found[0].stock), (vec![lamp.id], 9));
}

store_contract!(
    a_search_finds_every_match_once_in_order_and_the_first_match_first,
    a_page_examines_a_bounded_number_of_entries,
    a_rebuild_leaves_no_stale_hit,
);

/// On DynamoDB the index follows the stream: what the `search-index`
/// function (and `shop-local`'s poller) do with each batch.
#[tokio::test]
async fn dynamodb_the_stream_keeps_the_index_without_stale_hits() {
    let Some(endpoint) = common::server_url("SHOP_TEST_DYNAMODB_URL") else { return };
    let (dynamo, config) = common::fresh_dynamo(&endpoint).await;
    let store: Arc<dyn Store> = Arc::new(dynamo.clone());
    let mut poller = StreamPoller::open(&config, &dynamo, None).await.unwrap();
    let lamp = product("Brass Lamp", "", "Home", 100, 3);
    let rake = product("Garden Rake", "", "Garden", 100, 3);
    store.create_product(&lamp).await.unwrap();
    store.create_product(&rake).await.unwrap();
    let mut indexed = async || {
        for _ in 0..50 {
            let batches = poller.poll().await.unwrap();
            for (_, batch) in &batches {
                dynamo.index_records(&batch.records).await.unwrap();
            }
            if batches.is_empty() {
                return;
            }
        }
    };
    indexed().await;
    assert_eq!(ids(&store.list_products(&search("rake")).await.unwrap().items), [rake.id]);
    store.update_product(&update(&lamp, "Copper Lamp", StockChange::Adjust(-1))).await.unwrap();
    store.delete_product(rake.id).await.unwrap();
    indexed().await;
    assert!(store.list_products(&search("brass")).await.unwrap().items.is_empty(), "the old name is gone");
    assert!(store.list_products(&search("rake")).await.unwrap().items.is_empty(), "the deleted product is gone");
    let found = store.list_products(&search("copper")).await.unwrap().items;
    assert_eq!((ids(&found), found[0].stock), (vec![lamp.id], 2), "the entry has the new stock");
}
