//! The catalog: categories and products, with their validation rules and
//! the product search semantics both store adapters share.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::id::time_ordered_id;
use super::money::Money;

/// Largest stock a product may hold: fits every adapter's number type.
pub const MAX_STOCK: u64 = 1_000_000_000;

time_ordered_id!(
    /// A product's id.
    ProductId
);

fn bounded_text(raw: &str, min: usize, max: usize, allow_newlines: bool) -> Result<String, String> {
    let text = raw.trim();
    let length = text.chars().count();
    if length < min || length > max {
        return Err(if min == 0 {
            format!("must be at most {max} characters")
        } else {
            format!("must be {min} to {max} characters")
        });
    }
    if text.chars().any(|c| c.is_control() && !(allow_newlines && matches!(c, '\n' | '\r' | '\t'))) {
        return Err("must not contain control characters".into());
    }
    Ok(text.to_owned())
}

/// A product name: 1 to 200 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductName(String);

impl ProductName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        bounded_text(raw, 1, 200, false).map(ProductName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A description: up to 5000 characters, newlines allowed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    pub fn parse(raw: &str) -> Result<Self, String> {
        bounded_text(raw, 0, 5000, true).map(Description)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A category name: 1 to 50 characters; unique case-insensitively through
/// its [`CategoryName::key`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CategoryName(String);

impl CategoryName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        bounded_text(raw, 1, 50, false).map(CategoryName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lower-cased form that identifies the category.
    pub fn key(&self) -> String {
        category_key(&self.0)
    }
}

/// The identity of a category name as typed in a query or a product.
pub fn category_key(raw: &str) -> String {
    raw.trim().to_lowercase()
}

/// Most counters a product's stock may be spread over.
pub const MAX_STOCK_COUNTERS: u16 = 32;

/// How many counters hold a product's units: 1 (the default) to
/// [`MAX_STOCK_COUNTERS`].
pub fn parse_stock_counters(number: &serde_json::Number) -> Result<u16, String> {
    match number.as_u64() {
        Some(counters @ 1..) if counters <= u64::from(MAX_STOCK_COUNTERS) => Ok(counters as u16),
        _ => Err(format!("must be an integer from 1 to {MAX_STOCK_COUNTERS}")),
    }
}

/// Units in stock: a non-negative integer up to [`MAX_STOCK`].
pub fn parse_stock(number: &serde_json::Number) -> Result<u64, String> {
    match number.as_u64() {
        Some(stock) if stock <= MAX_STOCK => Ok(stock),
        Some(_) => Err(format!("must be at most {MAX_STOCK}")),
        None => Err("must be a non-negative integer".into()),
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Category {
    pub id: Uuid,
    pub name: CategoryName,
    pub description: Description,
    pub created_at: OffsetDateTime,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Product {
    pub id: ProductId,
    pub name: ProductName,
    pub description: Description,
    pub price: Money,
    /// The category's name as it was created (its canonical spelling).
    pub category: CategoryName,
    /// The total units in stock, however many counters hold them.
    pub stock: u64,
    /// How many counters the units are spread over, so that orders of a
    /// hot product write several keys instead of one (an admin's choice;
    /// see `store::dynamodb::stock`). Every counter can serve any order;
    /// the total is exact.
    pub stock_counters: u16,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Product {
    /// Lower-cased words of name and description between single spaces,
    /// with a space at each end, so that `contains(" <prefix>")` is a
    /// word-prefix match, the same test in memory and in a DynamoDB filter.
    pub fn search_text(&self) -> String {
        let mut text = String::from(" ");
        for word in words(self.name.as_str()).chain(words(self.description.as_str())) {
            text.push_str(&word);
            text.push(' ');
        }
        text
    }
}

/// The lower-cased words of `text`: runs of letters and digits.
pub(super) fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase)
}

/// The words of a `q` search: each must start a word of the product's
/// name or description.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchTerms(Vec<String>);

impl SearchTerms {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.chars().count() > 100 {
            return Err("must be at most 100 characters".into());
        }
        let mut terms: Vec<String> = words(raw).collect();
        terms.sort();
        terms.dedup();
        if terms.is_empty() {
            return Err("must contain a letter or digit".into());
        }
        if terms.len() > 10 {
            return Err("must have at most 10 words".into());
        }
        Ok(SearchTerms(terms))
    }

    /// The patterns to look for in [`Product::search_text`].
    pub fn patterns(&self) -> impl Iterator<Item = String> + '_ {
        self.0.iter().map(|term| format!(" {term}"))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The distinct words, sorted.
    pub fn words(&self) -> &[String] {
        &self.0
    }
}

/// Where a page of a product listing starts (exclusive).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "lowercase")]
pub enum ListPosition {
    /// Newest first: after this id (ids sort by creation time).
    Newest { id: ProductId },
    /// Within a category, cheapest first: after this price and id.
    Price { price: u64, id: ProductId },
}

/// A product listing: filters, page size and start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProductQuery {
    /// A category key; when set, the listing is cheapest first.
    pub category: Option<String>,
    pub min_price: Option<Money>,
    pub max_price: Option<Money>,
    /// `true`: stock > 0 only; `false`: stock = 0 only.
    pub in_stock: Option<bool>,
    pub terms: SearchTerms,
    pub limit: usize,
    pub after: Option<ListPosition>,
}

impl ProductQuery {
    /// Whether `product` passes every filter; the adapters' own filters
    /// must agree with this.
    pub fn matches(&self, product: &Product) -> bool {
        let category_ok = self.category.as_ref().is_none_or(|key| *key == product.category.key());
        let min_ok = self.min_price.is_none_or(|min| product.price >= min);
        let max_ok = self.max_price.is_none_or(|max| product.price <= max);
        let stock_ok = self.in_stock.is_none_or(|wanted| (product.stock > 0) == wanted);
        let text = if self.terms.is_empty() { String::new() } else { product.search_text() };
        let terms_ok = self.terms.patterns().all(|pattern| text.contains(&pattern));
        category_ok && min_ok && max_ok && stock_ok && terms_ok
    }

    /// The position just after `product` in this listing's order.
    pub fn position_of(&self, product: &Product) -> ListPosition {
        match self.category {
            Some(_) => ListPosition::Price { price: product.price.minor(), id: product.id },
            None => ListPosition::Newest { id: product.id },
        }
    }
}

/// One page of a listing.
#[derive(Debug, Default)]
pub struct ProductPage {
    pub items: Vec<Product>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<ListPosition>,
}

/// How an update changes the stock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StockChange {
    Keep,
    /// Set to this many units.
    Set(u64),
    /// Add (or with a negative number remove) units, atomically with any
    /// concurrent order; refused if the stock would go below zero.
    Adjust(i64),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(name: &str, description: &str, price: u64, stock: u64) -> Product {
        let now = OffsetDateTime::now_utc();
        Product {
            id: ProductId::new(),
            name: ProductName::parse(name).unwrap(),
            description: Description::parse(description).unwrap(),
            price: Money::from_minor(price),
            category: CategoryName::parse("Electronics").unwrap(),
            stock,
            stock_counters: 1,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn search_matches_word_prefixes_case_insensitively() {
        let laptop = product("Gaming Laptop Pro", "A fast, light machine.", 99_900, 3);
        let query = |q: &str| ProductQuery { terms: SearchTerms::parse(q).unwrap(), ..Default::default() };
        assert!(query("lap").matches(&laptop));
        assert!(query("GAMING fast").matches(&laptop));
        assert!(query("mach").matches(&laptop));
        assert!(!query("aptop").matches(&laptop), "not a word prefix");
        assert!(!query("laptop phone").matches(&laptop), "every word must match");
    }

    #[test]
    fn filters_combine() {
        let cheap_empty = product("Cable", "", 500, 0);
        let query = ProductQuery {
            category: Some("electronics".into()),
            min_price: Some(Money::from_minor(100)),
            max_price: Some(Money::from_minor(500)),
            in_stock: Some(false),
            ..Default::default()
        };
        assert!(query.matches(&cheap_empty));
        assert!(!ProductQuery { in_stock: Some(true), ..query.clone() }.matches(&cheap_empty));
        assert!(!ProductQuery { max_price: Some(Money::from_minor(499)), ..query.clone() }.matches(&cheap_empty));
        assert!(!ProductQuery { category: Some("books".into()), ..query }.matches(&cheap_empty));
    }

    #[test]
    fn search_terms_are_bounded() {
        assert!(SearchTerms::parse("  !!  ").is_err());
        assert!(SearchTerms::parse(&"a ".repeat(11)).is_ok(), "duplicates collapse");
        assert!(SearchTerms::parse("a b c d e f g h i j k").is_err());
        assert!(SearchTerms::parse(&"x".repeat(101)).is_err());
    }

    #[test]
    fn texts_are_validated() {
        assert!(ProductName::parse(" ").is_err());
        assert!(ProductName::parse(&"n".repeat(201)).is_err());
        assert!(Description::parse("line one\nline two").is_ok());
        assert!(Description::parse(&"d".repeat(5001)).is_err());
        assert!(CategoryName::parse("Books\u{0}").is_err());
        assert_eq!(CategoryName::parse(" Home & Garden ").unwrap().key(), "home & garden");
    }

    #[test]
    fn stock_must_be_a_bounded_whole_number() {
        let n = |json: &str| serde_json::from_str::<serde_json::Number>(json).unwrap();
        assert_eq!(parse_stock(&n("0")), Ok(0));
        assert!(parse_stock(&n("-1")).is_err());
        assert!(parse_stock(&n("1.5")).is_err());
        assert!(parse_stock(&n("1000000001")).is_err());
    }

    #[test]
    fn stock_counters_are_one_to_the_maximum() {
        let n = |json: &str| serde_json::from_str::<serde_json::Number>(json).unwrap();
        assert_eq!(parse_stock_counters(&n("1")), Ok(1));
        assert_eq!(parse_stock_counters(&n("32")), Ok(MAX_STOCK_COUNTERS));
        for wrong in ["0", "33", "-1", "2.5", "70000"] {
            assert!(parse_stock_counters(&n(wrong)).is_err(), "{wrong}");
        }
    }

    #[test]
    fn product_ids_sort_by_creation() {
        let first = ProductId::new();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = ProductId::new();
        assert!(first.to_string() < second.to_string());
    }
}
