//! The search index's rules, shared by both stores: which index entries a
//! product has, which entry list a search reads, and how much of it a page
//! may examine.
//!
//! # Invariant
//!
//! A search reads one entry list of an inverted prefix index, never the
//! catalog: the product's entries are every prefix (1 to
//! [`MAX_INDEXED_PREFIX`] characters) of every word of its name and
//! description, so any search word is, or begins with, an indexed key. The
//! list read is the one of the search's *leading word*: of several words,
//! the one with the fewest entries when the store counted at most
//! [`PROBE`] of some (DynamoDB counts the lists of the three longest
//! words only), else the longest. It is read in the listing's own
//! order (newest first, or a category cheapest first), and every other
//! condition ([`super::ProductQuery::matches`]) is checked on the entries
//! read.
//!
//! So a single word, alone or with a category and price range (and, on
//! DynamoDB, `inStock=true`), reads exactly the page and one entry more
//! whatever the catalog's size. A condition no key serves (another word, a
//! price range without a category, `inStock=false`) may skip entries; a
//! page then examines at most [`MAX_EXAMINED`] entries beyond those it
//! returns and ends with a cursor after the last one examined. On DynamoDB
//! it also stops near 8 consumed read units (entries
//! are copies of products, so their size is what a page pays for).

use std::collections::BTreeSet;

use super::catalog::{Product, SearchTerms, words};

/// Longest prefix the index keys: a longer search word reads the list of
/// its first `MAX_INDEXED_PREFIX` characters and checks the rest of the
/// word on each entry. Words this long share their first twelve characters
/// with few others, and the cap bounds a product's entry count by its
/// text's length.
pub const MAX_INDEXED_PREFIX: usize = 12;

/// Entries a search page may examine beyond the ones it returns: the bound
/// on its reads when its conditions are not all served by the index keys.
pub const MAX_EXAMINED: usize = 200;

/// Every index key of `product`: each distinct prefix of each word of its
/// name and description, up to [`MAX_INDEXED_PREFIX`] characters.
pub fn index_keys(product: &Product) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for word in words(product.name.as_str()).chain(words(product.description.as_str())) {
        let mut prefix = String::new();
        for c in word.chars().take(MAX_INDEXED_PREFIX) {
            prefix.push(c);
            keys.insert(prefix.clone());
        }
    }
    keys
}

/// The index key under which products matching `word` are listed.
pub fn index_key(word: &str) -> String {
    word.chars().take(MAX_INDEXED_PREFIX).collect()
}

/// Whether a product's change from `before` to `after` (absent: created,
/// deleted) changes what a listing or search page may show: anything but a
/// stock change that neither reaches nor leaves zero. Such a change leaves
/// cached pages alone, so the listing cache survives the order rate; a
/// listing's stock is availability, exact only on the product's own page.
pub fn changes_listings(before: Option<&Product>, after: Option<&Product>) -> bool {
    let (Some(before), Some(after)) = (before, after) else { return true };
    before.name != after.name
        || before.description != after.description
        || before.price != after.price
        || before.category != after.category
        || (before.stock > 0) != (after.stock > 0)
}

/// Entries of each word's list a search of several words counts first, to
/// lead with a word that has few: a rare word among common ones then
/// bounds the reads by its own short list.
pub const PROBE: usize = 10;

impl SearchTerms {
    /// The word whose entry list a search reads when nothing is known of
    /// the lists: the longest (a longer prefix matches fewer words), the
    /// alphabetically first of equals.
    pub fn leading(&self) -> Option<&str> {
        self.leading_by(|_| 0)
    }

    /// The word with the shortest list by `count` (each word's entry
    /// count, exact up to [`PROBE`]; any larger count means "many"), then
    /// as [`Self::leading`].
    pub fn leading_by(&self, count: impl Fn(&str) -> usize) -> Option<&str> {
        let rank = |word: &String| (std::cmp::Reverse(count(word).min(PROBE + 1)), word.chars().count());
        self.words().iter().max_by(|a, b| rank(a).cmp(&rank(b)).then(b.cmp(a))).map(String::as_str)
    }

    /// The index key of the [`Self::leading`] word.
    pub fn leading_key(&self) -> Option<String> {
        self.leading().map(index_key)
    }

    /// Whether the index key alone proves every word matches: one word,
    /// no longer than an index key. Otherwise each entry's text is checked.
    pub fn served_by_key(&self) -> bool {
        matches!(self.words(), [only] if only.chars().count() <= MAX_INDEXED_PREFIX)
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;
    use crate::domain::{CategoryName, Description, Money, ProductId, ProductName, ProductQuery};

    fn product(name: &str, description: &str) -> Product {
        let now = OffsetDateTime::now_utc();
        Product {
            id: ProductId::new(),
            name: ProductName::parse(name).unwrap(),
            description: Description::parse(description).unwrap(),
            price: Money::from_minor(100),
            category: CategoryName::parse("Books").unwrap(),
            stock: 1,
            stock_counters: 1,
            created_at: now,
            updated_at: now,
        }
    }

    fn terms(raw: &str) -> SearchTerms {
        SearchTerms::parse(raw).unwrap()
    }

    #[test]
    fn only_a_stock_change_within_availability_leaves_listings_alone() {
        let before = product("Gaming Laptop", "Fast.");
        let with = |change: &dyn Fn(&mut Product)| {
            let mut after = before.clone();
            change(&mut after);
            changes_listings(Some(&before), Some(&after))
        };
        assert!(!with(&|p| p.stock = 7));
        assert!(!with(&|p| p.updated_at += time::Duration::SECOND));
        assert!(with(&|p| p.stock = 0), "a sell-out");
        assert!(with(&|p| p.price = Money::from_minor(99)));
        assert!(with(&|p| p.name = ProductName::parse("Gaming Laptop 2").unwrap()));
        assert!(with(&|p| p.description = Description::parse("Faster.").unwrap()));
        assert!(with(&|p| p.category = CategoryName::parse("Games").unwrap()));
        assert!(changes_listings(None, Some(&before)) && changes_listings(Some(&before), None));
        let sold_out = Product { stock: 0, ..before.clone() };
        assert!(changes_listings(Some(&sold_out), Some(&before)), "a restock");
    }

    #[test]
    fn a_product_is_listed_under_every_prefix_of_every_word() {
        let keys = index_keys(&product("Gaming Laptop", "Fast."));
        let expected = ["g", "ga", "gam", "gami", "gamin", "gaming", "l", "la", "lap", "lapt", "lapto", "laptop"]
            .into_iter()
            .chain(["f", "fa", "fas", "fast"]);
        assert_eq!(keys, expected.map(str::to_owned).collect());
    }

    #[test]
    fn prefixes_stop_at_the_cap_and_count_characters_not_bytes() {
        let keys = index_keys(&product("Überkompliziertheit", ""));
        assert_eq!(keys.len(), MAX_INDEXED_PREFIX, "one key per prefix length up to the cap");
        assert!(keys.contains("überkomplizi"));
        assert_eq!(index_key("Überkompliziertheit".to_lowercase().as_str()), "überkomplizi");
    }

    #[test]
    fn every_word_that_matches_a_product_has_its_key_among_the_products_keys() {
        let laptop = product("Gaming Laptop Pro", "A fast, light machine for internationalisation.");
        let keys = index_keys(&laptop);
        for q in ["lap", "GAMING", "mach", "internationalis", "a", "pro fast", "light LAPTOP gaming"] {
            let query = ProductQuery { terms: terms(q), ..Default::default() };
            assert!(query.matches(&laptop), "{q}");
            let key = query.terms.leading_key().unwrap();
            assert!(keys.contains(&key), "{q}: a match is listed under the key the search reads");
        }
    }

    #[test]
    fn the_leading_word_is_the_longest() {
        assert_eq!(terms("mug laptop red").leading(), Some("laptop"));
        assert_eq!(terms("red mug").leading(), Some("mug"), "equals: the alphabetically first");
        assert_eq!(SearchTerms::default().leading(), None);
    }

    #[test]
    fn a_word_with_few_entries_leads_whatever_its_length() {
        let counts = |word: &str| match word {
            "laptop" => 50_000,
            "zq" => 3,
            _ => PROBE + 1,
        };
        assert_eq!(terms("laptop zq").leading_by(counts), Some("zq"));
        assert_eq!(terms("laptop mug").leading_by(counts), Some("laptop"), "both many: the longest");
        assert_eq!(terms("laptop zq").leading_by(|_| 0), Some("laptop"), "both empty: the longest");
    }

    #[test]
    fn only_one_short_word_is_proved_by_its_key() {
        assert!(terms("lap").served_by_key());
        assert!(!terms("lap pro").served_by_key(), "the other word is checked on each entry");
        assert!(!terms("travellersxyz").served_by_key(), "a word longer than a key is checked too");
    }
}
