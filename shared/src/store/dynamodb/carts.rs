//! Carts: one item per user (`CART#<user>` / `CART`), written with a
//! compare-and-set on its `version`, expired by the table's TTL on
//! `expiresAt`. Checkout is the order's `TransactWriteItems` with the
//! cart's conditional delete as its last item.
//!
//! TTL deletes lazily (within days), so every read and every condition
//! treats a cart whose `expiresAt` has passed as absent.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Delete, TransactWriteItem};
use time::OffsetDateTime;

use super::DynamoStore;
use super::errors::classify;
use super::items::{Item, Key, attr_s, attr_time, attr_u64, n, s, timestamp};
use super::orders::{items_failing, lines_of, placing_failure};
use super::stock::{Direction, Refused};
use crate::domain::{Cart, CartLine, Order, UserId};
use crate::store::{CartStore, IdempotencyTicket, StoreError};

/// The condition "the stored cart is live at version `:version`"; with
/// version 0, "there is no live cart".
fn at_version(version: u64) -> &'static str {
    if version == 0 {
        "attribute_not_exists(PK) OR expiresAt <= :now"
    } else {
        "version = :version AND expiresAt > :now"
    }
}

fn cart_to_item(cart: &Cart, expires_at: OffsetDateTime) -> Result<Item, StoreError> {
    let lines = serde_json::to_string(&cart.lines).map_err(|e| StoreError::Internal(e.to_string()))?;
    let updated_at = cart.updated_at.ok_or_else(|| StoreError::Internal("a cart saved without a time".into()))?;
    let mut item = Key::cart(cart.user_id).into_item();
    item.extend([
        ("entity".to_owned(), s("cart")),
        ("userId".to_owned(), s(cart.user_id.to_string())),
        ("lines".to_owned(), s(lines)),
        ("version".to_owned(), n(cart.version)),
        ("updatedAt".to_owned(), timestamp(updated_at)),
        ("expiresAt".to_owned(), n(expires_at.unix_timestamp())),
    ]);
    Ok(item)
}

fn cart_from_item(item: &Item) -> Result<Cart, StoreError> {
    let corrupt = |what: &str, e: String| StoreError::Internal(format!("cart item {what}: {e}"));
    let lines: Vec<CartLine> =
        serde_json::from_str(&attr_s(item, "lines")?).map_err(|e| corrupt("lines", e.to_string()))?;
    Ok(Cart {
        user_id: UserId::parse(&attr_s(item, "userId")?).ok_or_else(|| corrupt("userId", "not a uuid".into()))?,
        lines,
        version: attr_u64(item, "version")?,
        updated_at: Some(attr_time(item, "updatedAt")?),
    })
}

impl DynamoStore {
    /// Checkout's last transaction item: the cart's removal, if it is
    /// still live at `version`.
    fn cart_removal(
        &self,
        user_id: UserId,
        version: u64,
        now: OffsetDateTime,
    ) -> Result<TransactWriteItem, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(Key::cart(user_id).into_item()))
            .condition_expression(at_version(version))
            .expression_attribute_values(":version", n(version))
            .expression_attribute_values(":now", n(now.unix_timestamp()))
            .build()
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }
}

#[async_trait]
impl CartStore for DynamoStore {
    async fn cart(&self, user_id: UserId, now: OffsetDateTime) -> Result<Option<Cart>, StoreError> {
        let Some(item) = self.get(Key::cart(user_id)).await? else { return Ok(None) };
        if attr_u64(&item, "expiresAt")? <= u64::try_from(now.unix_timestamp()).unwrap_or(0) {
            return Ok(None);
        }
        cart_from_item(&item).map(Some)
    }

    async fn save_cart(&self, cart: &Cart, expires_at: OffsetDateTime) -> Result<(), StoreError> {
        let previous = cart.version.checked_sub(1).ok_or_else(|| StoreError::Internal("cart version 0".into()))?;
        let now = cart.updated_at.unwrap_or_else(OffsetDateTime::now_utc);
        let mut request = self
            .writer
            .put_item()
            .table_name(&self.table)
            .set_item(Some(cart_to_item(cart, expires_at)?))
            .condition_expression(at_version(previous))
            .expression_attribute_values(":now", n(now.unix_timestamp()));
        if previous > 0 {
            request = request.expression_attribute_values(":version", n(previous));
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Err(StoreError::CartChanged)
            }
            Err(err) => Err(classify(err)),
        }
    }

    async fn delete_cart(&self, user_id: UserId, version: Option<u64>) -> Result<(), StoreError> {
        let mut request =
            self.writer.delete_item().table_name(&self.table).set_key(Some(Key::cart(user_id).into_item()));
        if let Some(version) = version {
            request = request
                .condition_expression(at_version(version))
                .expression_attribute_values(":now", n(OffsetDateTime::now_utc().unix_timestamp()));
            if version > 0 {
                request = request.expression_attribute_values(":version", n(version));
            }
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Err(StoreError::CartChanged)
            }
            Err(err) => Err(classify(err)),
        }
    }

    async fn check_out(
        &self,
        order: &Order,
        cart_version: u64,
        completion: Option<(&IdempotencyTicket, &str)>,
    ) -> Result<(), StoreError> {
        if cart_version == 0 {
            return Err(StoreError::CartChanged);
        }
        let mut own = self.order_writes(order, completion)?;
        let cart_position = own.len();
        own.push(self.cart_removal(order.user_id, cart_version, order.created_at)?);
        match self.send_with_stock(&lines_of(order), Direction::Reserve, order.created_at, &own).await {
            // A changed cart outranks short stock: the shopper reviews the
            // cart first, and its lines may no longer be the short ones.
            Err(Refused::Other(err, first_own))
                if items_failing(&err, first_own + own.len()).contains(&(first_own + cart_position)) =>
            {
                Err(StoreError::CartChanged)
            }
            result => result.map_err(placing_failure),
        }
    }

    async fn sweep_expired_carts(&self, _now: OffsetDateTime, _limit: usize) -> Result<usize, StoreError> {
        // The table's TTL on `expiresAt` deletes them; reads skip the ones
        // it has not reached yet.
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ProductId;

    #[test]
    fn a_cart_survives_the_round_trip_through_an_item() {
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let cart = Cart {
            user_id: UserId::new(),
            lines: vec![CartLine { product_id: ProductId::new(), quantity: 3, product_name: "Mug".into() }],
            version: 4,
            updated_at: Some(now),
        };
        let item = cart_to_item(&cart, now + time::Duration::days(30)).unwrap();
        assert_eq!(item["PK"], s(format!("CART#{}", cart.user_id)));
        assert!(!item.contains_key("GSI1PK"), "carts are read by key only");
        assert_eq!(cart_from_item(&item).unwrap(), cart);
    }
}
