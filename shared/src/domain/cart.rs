//! Carts: what a shopper means to buy, kept between visits.
//!
//! A cart holds product ids and quantities only. It locks no price and
//! reserves no stock: names, prices and availability are read from the
//! catalog whenever the cart is shown ([`PricedCart`]), and the order made
//! at checkout reserves the stock. Every change moves the cart's `version`
//! on, so a write based on an old read (a second tab, a checkout racing an
//! edit) can be refused by a compare-and-set on it.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::catalog::{Product, ProductId};
use super::money::Money;
use super::order::{MAX_LINES, MAX_QUANTITY};
use super::user::UserId;

/// Most units a cart may hold in all, as one order may of one product:
/// checkout then never meets a cart an order could not hold.
pub const MAX_CART_UNITS: u64 = MAX_QUANTITY;

/// One line: a product and how many of it. The name is the catalog's when
/// the line was last set, shown only once the product is gone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CartLine {
    pub product_id: ProductId,
    pub quantity: u64,
    pub product_name: String,
}

/// A user's cart. A user without a stored cart has the empty cart at
/// version 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cart {
    pub user_id: UserId,
    /// In the order the products were first added.
    pub lines: Vec<CartLine>,
    /// 0 for a cart never stored; each stored change adds one.
    pub version: u64,
    /// `None` for a cart never stored.
    pub updated_at: Option<OffsetDateTime>,
}

/// Why a change to a cart is refused; the cart is left as it was.
#[derive(Debug, PartialEq, Eq)]
pub enum CartError {
    /// A new line would make more than [`MAX_LINES`].
    TooManyLines,
    /// The cart would hold more than [`MAX_CART_UNITS`] units in all.
    TooManyUnits,
}

/// A line's quantity as sent: an integer from 0 (remove the line) to
/// [`MAX_QUANTITY`].
pub fn parse_quantity(number: &serde_json::Number) -> Result<u64, String> {
    number
        .as_u64()
        .filter(|quantity| *quantity <= MAX_QUANTITY)
        .ok_or_else(|| format!("must be an integer from 0 to {MAX_QUANTITY}"))
}

impl std::fmt::Display for CartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CartError::TooManyLines => write!(f, "a cart holds at most {MAX_LINES} different products"),
            CartError::TooManyUnits => write!(f, "a cart holds at most {MAX_CART_UNITS} units in all"),
        }
    }
}

impl Cart {
    /// The cart of a user who has none stored.
    pub fn empty(user_id: UserId) -> Self {
        Cart { user_id, lines: Vec::new(), version: 0, updated_at: None }
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Units in all lines.
    pub fn item_count(&self) -> u64 {
        self.lines.iter().map(|line| line.quantity).sum()
    }

    pub fn line(&self, product_id: ProductId) -> Option<&CartLine> {
        self.lines.iter().find(|line| line.product_id == product_id)
    }

    /// Sets `product`'s line to `quantity` (1 to [`MAX_QUANTITY`], checked
    /// by the caller's parsing), adding the line at the end if it is new.
    /// Returns whether anything changed.
    pub fn set_quantity(&mut self, product: &Product, quantity: u64) -> Result<bool, CartError> {
        let name = product.name.as_str();
        let others: u64 = self.lines.iter().filter(|l| l.product_id != product.id).map(|l| l.quantity).sum();
        if others + quantity > MAX_CART_UNITS {
            return Err(CartError::TooManyUnits);
        }
        let full = self.lines.len() >= MAX_LINES;
        match self.lines.iter_mut().find(|line| line.product_id == product.id) {
            Some(line) if line.quantity == quantity && line.product_name == name => Ok(false),
            Some(line) => {
                line.quantity = quantity;
                line.product_name = name.to_owned();
                Ok(true)
            }
            None if full => Err(CartError::TooManyLines),
            None => {
                self.lines.push(CartLine { product_id: product.id, quantity, product_name: name.to_owned() });
                Ok(true)
            }
        }
    }

    /// Drops `product_id`'s line; whether there was one.
    pub fn remove(&mut self, product_id: ProductId) -> bool {
        let before = self.lines.len();
        self.lines.retain(|line| line.product_id != product_id);
        self.lines.len() != before
    }

    /// The cart as its next stored version, changed at `at`.
    pub fn next_version(mut self, at: OffsetDateTime) -> Self {
        self.version += 1;
        self.updated_at = Some(at);
        self
    }

    /// Shows the cart with what the catalog says now: `products[i]` is
    /// line `i`'s product, `None` when it was deleted.
    pub fn priced(&self, products: &[Option<Product>]) -> PricedCart {
        let lines: Vec<PricedLine> = self
            .lines
            .iter()
            .zip(products.iter().chain(std::iter::repeat(&None)))
            .map(|(line, product)| PricedLine::of(line, product.as_ref()))
            .collect();
        // Within the catalog's bounds (price <= 1,000,000.00, 1000 units)
        // no sum overflows; saturate rather than wrap if that ever changes.
        let subtotal = lines
            .iter()
            .filter_map(|line| line.line_total)
            .fold(Money::ZERO, |sum, total| sum.checked_add(total).unwrap_or(Money::from_minor(u64::MAX)));
        PricedCart { lines, subtotal, item_count: self.item_count() }
    }
}

/// A cart line as the shopper sees it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PricedLine {
    pub product_id: ProductId,
    /// The catalog's name now, or the last one seen for a deleted product.
    pub product_name: String,
    pub quantity: u64,
    /// `None` when the product was deleted.
    pub unit_price: Option<Money>,
    pub line_total: Option<Money>,
    /// The product exists and has the line's quantity in stock: checkout
    /// would succeed for this line now.
    pub available: bool,
    /// Units in stock now (0 for a deleted product).
    pub available_quantity: u64,
}

impl PricedLine {
    fn of(line: &CartLine, product: Option<&Product>) -> Self {
        match product {
            Some(product) => PricedLine {
                product_id: line.product_id,
                product_name: product.name.as_str().to_owned(),
                quantity: line.quantity,
                unit_price: Some(product.price),
                line_total: product.price.checked_mul(line.quantity),
                available: product.stock >= line.quantity,
                available_quantity: product.stock,
            },
            None => PricedLine {
                product_id: line.product_id,
                product_name: line.product_name.clone(),
                quantity: line.quantity,
                unit_price: None,
                line_total: None,
                available: false,
                available_quantity: 0,
            },
        }
    }
}

/// A cart with live prices: every line, the subtotal of the lines whose
/// product still exists, and the units in all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PricedCart {
    pub lines: Vec<PricedLine>,
    pub subtotal: Money,
    pub item_count: u64,
}

impl PricedCart {
    /// Whether every line could be checked out now.
    pub fn all_available(&self) -> bool {
        self.lines.iter().all(|line| line.available)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CategoryName, Description, ProductName};

    fn product(name: &str, price_minor: u64, stock: u64) -> Product {
        let now = OffsetDateTime::now_utc();
        Product {
            id: ProductId::new(),
            name: ProductName::parse(name).unwrap(),
            description: Description::parse("").unwrap(),
            price: Money::from_minor(price_minor),
            category: CategoryName::parse("Books").unwrap(),
            stock,
            stock_counters: 1,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn setting_a_quantity_adds_updates_and_reports_no_change() {
        let (mug, pen) = (product("Mug", 950, 5), product("Pen", 120, 0));
        let mut cart = Cart::empty(UserId::new());
        assert_eq!(cart.set_quantity(&mug, 2), Ok(true));
        assert_eq!(cart.set_quantity(&pen, 1), Ok(true));
        assert_eq!(cart.set_quantity(&mug, 3), Ok(true));
        assert_eq!(cart.set_quantity(&mug, 3), Ok(false), "the same quantity again changes nothing");
        let ids: Vec<ProductId> = cart.lines.iter().map(|l| l.product_id).collect();
        assert_eq!(ids, [mug.id, pen.id], "lines keep the order they were first added in");
        assert_eq!(cart.item_count(), 4);
        assert!(cart.remove(mug.id));
        assert!(!cart.remove(mug.id), "removing a line twice finds nothing the second time");
    }

    #[test]
    fn the_line_and_unit_limits_leave_the_cart_unchanged() {
        let mut cart = Cart::empty(UserId::new());
        let products: Vec<Product> = (0..=MAX_LINES).map(|i| product(&format!("P{i}"), 100, 10)).collect();
        for product in &products[..MAX_LINES] {
            cart.set_quantity(product, 1).unwrap();
        }
        let before = cart.clone();
        assert_eq!(cart.set_quantity(&products[MAX_LINES], 1), Err(CartError::TooManyLines));
        assert_eq!(cart.set_quantity(&products[0], MAX_CART_UNITS), Err(CartError::TooManyUnits));
        assert_eq!(cart, before);
        // Raising an existing line within the total is fine.
        assert_eq!(cart.set_quantity(&products[0], MAX_CART_UNITS - (MAX_LINES as u64 - 1)), Ok(true));
    }

    #[test]
    fn a_priced_cart_shows_live_prices_and_flags_deleted_and_short_lines() {
        let (mug, lamp, gone) = (product("Mug", 950, 5), product("Lamp", 2_499, 1), product("Old", 100, 9));
        let mut cart = Cart::empty(UserId::new());
        cart.set_quantity(&mug, 2).unwrap();
        cart.set_quantity(&lamp, 3).unwrap();
        cart.set_quantity(&gone, 1).unwrap();
        let repriced = Product { price: Money::from_minor(1_000), ..mug.clone() };
        let priced = cart.priced(&[Some(repriced), Some(lamp), None]);
        assert_eq!(priced.lines[0].unit_price, Some(Money::from_minor(1_000)), "the price now, not when added");
        assert_eq!(priced.lines[0].line_total, Some(Money::from_minor(2_000)));
        assert!(priced.lines[0].available);
        assert!(!priced.lines[1].available, "3 wanted, 1 in stock");
        assert_eq!(priced.lines[1].available_quantity, 1);
        assert_eq!((priced.lines[2].unit_price, priced.lines[2].available), (None, false));
        assert_eq!(priced.lines[2].product_name, "Old", "a deleted product keeps its last name");
        assert_eq!(priced.subtotal, Money::from_minor(2_000 + 3 * 2_499), "deleted lines add nothing");
        assert_eq!(priced.item_count, 6);
        assert!(!priced.all_available());
    }

    #[test]
    fn quantities_are_whole_numbers_up_to_the_cap() {
        let number = |raw: &str| serde_json::from_str::<serde_json::Number>(raw).unwrap();
        assert_eq!(parse_quantity(&number("0")), Ok(0));
        assert_eq!(parse_quantity(&number("1000")), Ok(1000));
        for bad in ["1001", "-1", "1.5", "1e3"] {
            assert!(parse_quantity(&number(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn each_stored_change_moves_the_version_on() {
        let at = OffsetDateTime::now_utc();
        let cart = Cart::empty(UserId::new()).next_version(at).next_version(at);
        assert_eq!((cart.version, cart.updated_at), (2, Some(at)));
    }
}
