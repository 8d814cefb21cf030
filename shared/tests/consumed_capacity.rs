//! `DYNAMODB_CONSUMED_CAPACITY=on`: what each request's store calls consumed
//! reaches its metrics (what `load/lambda-cost.sh` prices), against
//! DynamoDB Local; off, nothing is recorded.

mod common;

use shop::domain::{Category, CategoryName, Description};
use shop::metrics::{self, Metric, Recorded};
use shop::store::CatalogStore;
use shop::store::dynamodb::DynamoStore;
use time::OffsetDateTime;

fn category() -> Category {
    Category {
        id: uuid::Uuid::now_v7(),
        name: CategoryName::parse("Capacity").unwrap(),
        description: Description::parse("things").unwrap(),
        created_at: OffsetDateTime::now_utc().replace_nanosecond(0).unwrap(),
    }
}

/// A write, then a strongly consistent read of it, as one request.
async fn write_then_read(store: &DynamoStore) -> Recorded {
    let category = category();
    let ((), recorded) = metrics::record(async {
        store.create_category(&category).await.unwrap();
        let read = store.category_by_key(&category.name.key()).await.unwrap();
        assert_eq!(read.map(|found| found.id), Some(category.id));
    })
    .await;
    recorded
}

#[tokio::test]
async fn asked_for_the_units_of_each_call_are_added_to_the_request() {
    let Some(endpoint) = common::server_url("SHOP_TEST_DYNAMODB_URL") else { return };
    let (store, _) = common::fresh_dynamo_with(&endpoint, &[("DYNAMODB_CONSUMED_CAPACITY", "on")]).await;
    let recorded = write_then_read(&store).await;
    let read = recorded.get(Metric::ReadCapacityUnits).expect("read units recorded");
    let written = recorded.get(Metric::WriteCapacityUnits).expect("write units recorded");
    assert!(read >= 1.0, "a strongly consistent read of a small item is one unit, got {read}");
    assert!(written >= 1.0, "a write is at least one unit, got {written}");
}

#[tokio::test]
async fn by_default_no_units_are_recorded() {
    let Some(endpoint) = common::server_url("SHOP_TEST_DYNAMODB_URL") else { return };
    let (store, _) = common::fresh_dynamo(&endpoint).await;
    let recorded = write_then_read(&store).await;
    assert_eq!(recorded.get(Metric::ReadCapacityUnits), None);
    assert_eq!(recorded.get(Metric::WriteCapacityUnits), None);
}
