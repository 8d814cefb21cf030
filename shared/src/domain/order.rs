//! Orders: validated order lines, exact totals and the status workflow.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::catalog::ProductId;
use super::id::time_ordered_id;
use super::money::Money;
use super::user::{Role, UserId};

/// Most lines one order may have: keeps the placing transaction within
/// DynamoDB's 100 items with room for the order and its idempotency record.
pub const MAX_LINES: usize = 50;
/// Most units of one product in one order.
pub const MAX_QUANTITY: u64 = 1000;

time_ordered_id!(
    /// An order's id.
    OrderId
);

/// Where an order is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    Pending,
    Confirmed,
    Shipped,
    Delivered,
    Cancelled,
    /// Never confirmed within `ORDER_RESERVATION_SECONDS`: its units went
    /// back to stock. Only the reservation expiry sets it.
    Expired,
}

/// Why a status change is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum TransitionError {
    /// The workflow has no such step from the current status (409).
    NotAllowed,
    /// The step exists, but only an admin may take it (403).
    AdminOnly,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 6] = [
        OrderStatus::Pending,
        OrderStatus::Confirmed,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
        OrderStatus::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Confirmed => "confirmed",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Expired => "expired",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        OrderStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == raw)
            .ok_or_else(|| "must be one of pending, confirmed, shipped, delivered, cancelled, expired".into())
    }

    /// True for the statuses whose units went back to stock: the change
    /// into one returns every line's units in the same atomic write.
    pub fn releases_stock(self) -> bool {
        matches!(self, OrderStatus::Cancelled | OrderStatus::Expired)
    }

    /// The workflow: pending -> confirmed -> shipped -> delivered by an
    /// admin; pending or confirmed -> cancelled by the owner or an admin.
    /// `expired` is no one's to set through the API: only the reservation
    /// expiry moves a pending order there (see [`crate::events::expiry`]).
    pub fn check_transition(self, to: OrderStatus, actor: Role) -> Result<(), TransitionError> {
        use OrderStatus::*;
        match (self, to) {
            (Pending | Confirmed, Cancelled) => Ok(()),
            (Pending, Confirmed) | (Confirmed, Shipped) | (Shipped, Delivered) => match actor {
                Role::Admin => Ok(()),
                Role::Customer => Err(TransitionError::AdminOnly),
            },
            _ => Err(TransitionError::NotAllowed),
        }
    }
}

/// How an order was placed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderSource {
    /// `POST /api/orders`, with its lines in the request. Orders stored
    /// before the source was recorded are these.
    #[default]
    Api,
    /// `POST /api/checkout`, from the caller's cart.
    Cart,
}

impl OrderSource {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderSource::Api => "api",
            OrderSource::Cart => "cart",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [OrderSource::Api, OrderSource::Cart].into_iter().find(|source| source.as_str() == raw)
    }
}

/// One line of an order, with the name and unit price the catalog had when
/// the order was placed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    pub product_id: ProductId,
    pub product_name: String,
    pub quantity: u64,
    /// Unit price in minor units.
    pub price_minor: u64,
}

impl OrderItem {
    pub fn price(&self) -> Money {
        Money::from_minor(self.price_minor)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    pub id: OrderId,
    pub user_id: UserId,
    pub items: Vec<OrderItem>,
    pub total_amount: Money,
    pub status: OrderStatus,
    pub source: OrderSource,
    /// The order's payment; `unpaid` with no intent when payments are off.
    pub payment: super::Payment,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// The sum of every line's price times quantity; `None` on overflow
/// (impossible within the catalog's bounds, but never wrapped).
pub fn order_total(items: &[OrderItem]) -> Option<Money> {
    items.iter().try_fold(Money::ZERO, |total, item| total.checked_add(item.price().checked_mul(item.quantity)?))
}

/// Requested (product, quantity) lines, validated: 1 to 50 distinct
/// products, each 1 to 1000 units. A product listed twice is merged into
/// one line (its quantities added, still at most 1000).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderLines(Vec<(ProductId, u64)>);

impl OrderLines {
    /// `lines` as sent; field errors are named `items[i].field`.
    pub fn parse(lines: &[(String, serde_json::Number)]) -> Result<Self, Vec<(String, String)>> {
        if lines.is_empty() || lines.len() > MAX_LINES {
            return Err(vec![("items".into(), format!("must have 1 to {MAX_LINES} lines"))]);
        }
        let mut errors = Vec::new();
        let mut merged: BTreeMap<ProductId, u64> = BTreeMap::new();
        let mut order: Vec<ProductId> = Vec::new();
        for (i, (product_id, quantity)) in lines.iter().enumerate() {
            let id = ProductId::parse(product_id);
            let quantity = quantity.as_u64().filter(|q| (1..=MAX_QUANTITY).contains(q));
            if id.is_none() {
                errors.push((format!("items[{i}].productId"), "must be a product id".into()));
            }
            if quantity.is_none() {
                errors.push((format!("items[{i}].quantity"), format!("must be an integer from 1 to {MAX_QUANTITY}")));
            }
            if let (Some(id), Some(quantity)) = (id, quantity) {
                let total = merged.entry(id).or_insert_with(|| {
                    order.push(id);
                    0
                });
                *total += quantity;
                if *total > MAX_QUANTITY {
                    errors
                        .push((format!("items[{i}].quantity"), format!("at most {MAX_QUANTITY} units of one product")));
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(OrderLines(order.into_iter().map(|id| (id, merged[&id])).collect()))
    }

    pub fn lines(&self) -> &[(ProductId, u64)] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderStatus::*;

    fn lines(raw: &[(&str, &str)]) -> Result<OrderLines, Vec<(String, String)>> {
        let raw: Vec<(String, serde_json::Number)> =
            raw.iter().map(|(id, q)| (id.to_string(), serde_json::from_str(q).unwrap())).collect();
        OrderLines::parse(&raw)
    }

    const A: &str = "0193a1c2-7d4e-7b10-9a3f-5c6d7e8f9a0b";
    const B: &str = "0193a1c2-7d4e-7b10-9a3f-5c6d7e8f9a0c";

    #[test]
    fn a_product_listed_twice_becomes_one_line() {
        let parsed = lines(&[(A, "2"), (B, "1"), (A, "3")]).unwrap();
        assert_eq!(parsed.lines(), [(ProductId::parse(A).unwrap(), 5), (ProductId::parse(B).unwrap(), 1)]);
    }

    #[test]
    fn bad_lines_are_named() {
        let errors = lines(&[("nope", "1"), (A, "0"), (B, "1.5"), (A, "1001")]).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["items[0].productId", "items[1].quantity", "items[2].quantity", "items[3].quantity"]);
        assert!(lines(&[]).is_err());
        assert!(lines(&[(A, "600"), (A, "600")]).is_err(), "merged quantity over the cap");
        let too_many: Vec<(&str, &str)> = (0..51).map(|_| (A, "1")).collect();
        assert!(lines(&too_many).is_err());
    }

    #[test]
    fn the_workflow_allows_only_its_steps() {
        assert_eq!(Pending.check_transition(Confirmed, Role::Admin), Ok(()));
        assert_eq!(Confirmed.check_transition(Shipped, Role::Admin), Ok(()));
        assert_eq!(Shipped.check_transition(Delivered, Role::Admin), Ok(()));
        assert_eq!(Pending.check_transition(Cancelled, Role::Customer), Ok(()));
        assert_eq!(Confirmed.check_transition(Cancelled, Role::Customer), Ok(()));
        assert_eq!(Pending.check_transition(Confirmed, Role::Customer), Err(TransitionError::AdminOnly));
        for (from, to) in [
            (Shipped, Cancelled),
            (Delivered, Cancelled),
            (Cancelled, Pending),
            (Pending, Expired),
            (Expired, Pending),
            (Expired, Cancelled),
            (Pending, Shipped),
            (Pending, Pending),
            (Delivered, Shipped),
        ] {
            assert_eq!(from.check_transition(to, Role::Admin), Err(TransitionError::NotAllowed), "{from:?} -> {to:?}");
        }
    }

    #[test]
    fn totals_are_exact() {
        let item = |price_minor, quantity| OrderItem {
            product_id: ProductId::new(),
            product_name: "x".into(),
            quantity,
            price_minor,
        };
        assert_eq!(order_total(&[item(1999, 3), item(1, 1000)]), Some(Money::from_minor(6997)));
        assert_eq!(order_total(&[item(u64::MAX, 2)]), None);
    }
}
