//! Write heat by partition: the accounting behind
//! `DYNAMODB_PARTITION_REPORT` (the interceptor in `partitions.rs`).
//!
//! DynamoDB gives each partition about 1,000 write units a second. A write
//! lands in its item's table partition (the `PK` value) and in the
//! partition of every index key the item has (`GSI1PK`, `GSI2PK`): both
//! indexes project every attribute, so any change of an indexed item
//! rewrites its index entries, and a changed index key is a delete from the
//! old partition and a put into the new one. The units of one write are
//! its item's size in started kilobytes; a transaction's writes cost twice
//! that on the table (its changes reach the indexes afterwards, at the
//! standard rate).
//!
//! Updates and transactions return no item, so the accounting keeps a
//! shadow of every item it has seen put: its size and index keys, changed
//! by the `SET` and `REMOVE` of index keys in update expressions. An item
//! never seen put (written before the report started, or by another
//! process) counts one unit and no index: [`Summary::unknown_items`] says
//! how many; the heat script starts from an empty table so that it is 0.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;

/// What DynamoDB allows one partition to write a second.
pub const PARTITION_WRITE_UNITS: f64 = 1_000.0;

/// Key prefixes of one customer's (or one order's, one event's) own
/// partitions: their writes grow with that customer's activity, which the
/// per-client rate limit bounds, not with the shop's order rate. A load of
/// 20 shoppers would otherwise make 20 carts look like the shop's ceiling,
/// so the summary's hottest partition is the hottest of the others; a
/// product's own partition counts (its heat grows with the order rate of a
/// fixed catalog, and with a flash sale).
const ONE_CUSTOMERS: [&str; 9] =
    ["CART#", "ORDERS#USER#", "ORDER#", "USER#", "EMAIL#", "IDEMPOTENCY#", "PAYMENT_EVENT#", "EVENT#", "TOKEN#"];

/// Whether `partition` (`table <PK>`, `GSI1 <GSI1PK>`) is one customer's own.
pub fn is_one_customers(partition: &str) -> bool {
    let key = partition.split_once(' ').map_or(partition, |(_, key)| key);
    ONE_CUSTOMERS.iter().any(|prefix| key.starts_with(prefix))
}

/// The indexes whose keys an item may carry, by key attribute.
const INDEX_KEYS: [(&str, &str); 2] = [("GSI1", "GSI1PK"), ("GSI2", "GSI2PK")];

pub type Item = HashMap<String, AttributeValue>;

/// One item's write, as a request names it.
#[derive(Clone, Debug, PartialEq)]
pub struct Write {
    pub pk: String,
    pub sk: String,
    pub action: Action,
    /// Part of a `TransactWriteItems`: twice the units on the table.
    pub transactional: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Put(Item),
    /// The index key attributes an update sets (to a known string, or
    /// `None` when the expression computes it) or removes.
    Update {
        sets: Vec<(String, Option<String>)>,
        removes: Vec<String>,
    },
    Delete,
    /// A transaction's condition check: units on the table, nothing written.
    Check,
}

/// What the report has seen of one item.
#[derive(Clone, Debug)]
struct Shadow {
    units: u64,
    index_keys: [Option<String>; 2],
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Load {
    pub units: f64,
    pub writes: u64,
}

/// Every partition's write units since the report started.
#[derive(Debug, Default)]
pub struct Heat {
    partitions: HashMap<String, Load>,
    items: HashMap<(String, String), Shadow>,
    orders: u64,
    unknown_items: u64,
}

impl Heat {
    /// Charges one successful write to the partitions it lands in.
    pub fn charge(&mut self, write: &Write) {
        let factor = if write.transactional { 2.0 } else { 1.0 };
        let key = (write.pk.clone(), write.sk.clone());
        let table = format!("table {}", write.pk);
        match &write.action {
            Action::Put(item) => {
                let units = write_units(item_size(item));
                self.add(&table, units as f64 * factor);
                let new_keys = index_keys_of(item);
                let old = self.items.get(&key).cloned();
                let old_units = old.as_ref().map_or(units, |shadow| shadow.units);
                let old_keys = old.map(|shadow| shadow.index_keys).unwrap_or_default();
                self.index_writes(&old_keys, &new_keys, old_units, units);
                if matches!(item.get("entity"), Some(AttributeValue::S(entity)) if entity == "order") {
                    self.orders += 1;
                }
                self.items.insert(key, Shadow { units, index_keys: new_keys });
            }
            Action::Update { sets, removes } => {
                let known = self.items.get(&key).cloned();
                if known.is_none() {
                    self.unknown_items += 1;
                }
                let shadow = known.unwrap_or(Shadow { units: 1, index_keys: [None, None] });
                self.add(&table, shadow.units as f64 * factor);
                let mut new_keys = shadow.index_keys.clone();
                for (slot, (index, attribute)) in INDEX_KEYS.iter().enumerate() {
                    if removes.iter().any(|name| name == attribute) {
                        new_keys[slot] = None;
                    }
                    if let Some((_, value)) = sets.iter().find(|(name, _)| name == attribute) {
                        new_keys[slot] = Some(value.clone().unwrap_or_else(|| format!("{index}?")));
                    }
                }
                self.index_writes(&shadow.index_keys, &new_keys, shadow.units, shadow.units);
                self.items.insert(key, Shadow { units: shadow.units, index_keys: new_keys });
            }
            Action::Delete => {
                let shadow = self.items.remove(&key).unwrap_or(Shadow { units: 1, index_keys: [None, None] });
                self.add(&table, shadow.units as f64 * factor);
                self.index_writes(&shadow.index_keys, &[None, None], shadow.units, shadow.units);
            }
            Action::Check => {
                let units = self.items.get(&key).map_or(1, |shadow| shadow.units);
                self.add(&table, units as f64 * factor);
            }
        }
    }

    /// Forgets the partitions' units and the orders counted so far, not
    /// the items seen: what a run measures from here on (after its setup).
    pub fn restart_counting(&mut self) {
        self.partitions.clear();
        self.orders = 0;
        self.unknown_items = 0;
    }

    /// An index entry rewritten in place, moved between partitions, added
    /// or removed.
    fn index_writes(&mut self, old: &[Option<String>; 2], new: &[Option<String>; 2], old_units: u64, units: u64) {
        for (slot, (index, _)) in INDEX_KEYS.iter().enumerate() {
            match (&old[slot], &new[slot]) {
                (Some(before), Some(after)) if before == after => {
                    self.add(&format!("{index} {after}"), units as f64);
                }
                (before, after) => {
                    if let Some(before) = before {
                        self.add(&format!("{index} {before}"), old_units as f64);
                    }
                    if let Some(after) = after {
                        self.add(&format!("{index} {after}"), units as f64);
                    }
                }
            }
        }
    }

    fn add(&mut self, partition: &str, units: f64) {
        let load = self.partitions.entry(partition.to_owned()).or_default();
        load.units += units;
        load.writes += 1;
    }

    /// The report: totals, the hottest partitions, and each key pattern's
    /// (a partition name with its ids replaced by `<id>`).
    pub fn summary(&self, top: usize) -> Summary {
        let total_units: f64 = self.partitions.values().map(|load| load.units).sum();
        let mut partitions: Vec<PartitionLoad> = self
            .partitions
            .iter()
            .map(|(partition, load)| PartitionLoad {
                partition: partition.clone(),
                units: load.units,
                writes: load.writes,
                units_per_order: per_order(load.units, self.orders),
            })
            .collect();
        partitions.sort_by(|a, b| b.units.total_cmp(&a.units).then_with(|| a.partition.cmp(&b.partition)));
        let mut patterns: HashMap<String, PatternLoad> = HashMap::new();
        for partition in &partitions {
            let pattern = patterns.entry(pattern_of(&partition.partition)).or_default();
            pattern.partitions += 1;
            pattern.units += partition.units;
            if partition.units > pattern.hottest_units {
                pattern.hottest_units = partition.units;
            }
        }
        let mut patterns: Vec<PatternLoad> = patterns
            .into_iter()
            .map(|(name, mut pattern)| {
                pattern.pattern = name;
                pattern.hottest_units_per_order = per_order(pattern.hottest_units, self.orders);
                pattern.orders_per_second_at_limit = at_limit(pattern.hottest_units, self.orders);
                pattern
            })
            .collect();
        patterns.sort_by(|a, b| b.hottest_units.total_cmp(&a.hottest_units).then_with(|| a.pattern.cmp(&b.pattern)));
        for pattern in &mut patterns {
            pattern.one_customers = is_one_customers(&pattern.pattern);
        }
        let hottest = partitions.iter().find(|p| !is_one_customers(&p.partition));
        let hottest_own = partitions.iter().find(|p| is_one_customers(&p.partition));
        let hottest_product = partitions.iter().find(|p| is_one_products(&p.partition));
        Summary {
            orders: self.orders,
            total_units,
            unknown_items: self.unknown_items,
            hottest_partition: hottest.map(|p| p.partition.clone()).unwrap_or_default(),
            hottest_share: hottest.map_or(0.0, |p| round(p.units / total_units.max(f64::MIN_POSITIVE), 4)),
            orders_per_second_at_limit: hottest.map_or(0.0, |p| at_limit(p.units, self.orders)),
            hottest_customer_partition: hottest_own.map(|p| p.partition.clone()).unwrap_or_default(),
            hottest_customer_units_per_order: hottest_own.map_or(0.0, |p| p.units_per_order),
            hottest_product_partition: hottest_product.map(|p| p.partition.clone()).unwrap_or_default(),
            product_orders_per_second_at_limit: hottest_product.map_or(0.0, |p| at_limit(p.units, self.orders)),
            partitions: partitions.into_iter().take(top).collect(),
            patterns,
        }
    }
}

fn per_order(units: f64, orders: u64) -> f64 {
    if orders == 0 { 0.0 } else { round(units / orders as f64, 3) }
}

/// The order rate at which a partition writing `units` over `orders`
/// orders reaches [`PARTITION_WRITE_UNITS`] a second.
fn at_limit(units: f64, orders: u64) -> f64 {
    if units <= 0.0 || orders == 0 { 0.0 } else { round(PARTITION_WRITE_UNITS * orders as f64 / units, 0) }
}

fn round(value: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (value * scale).round() / scale
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PartitionLoad {
    pub partition: String,
    pub units: f64,
    pub writes: u64,
    pub units_per_order: f64,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PatternLoad {
    pub pattern: String,
    pub partitions: u64,
    pub units: f64,
    pub hottest_units: f64,
    pub hottest_units_per_order: f64,
    pub orders_per_second_at_limit: f64,
    /// One customer's own partitions (see [`is_one_customers`]).
    pub one_customers: bool,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub orders: u64,
    pub total_units: f64,
    pub unknown_items: u64,
    pub hottest_partition: String,
    /// The hottest partition's share of all write units, table and indexes.
    pub hottest_share: f64,
    /// The order rate at which the hottest partition would write
    /// [`PARTITION_WRITE_UNITS`] a second, at this run's mix.
    pub orders_per_second_at_limit: f64,
    /// The hottest of one customer's own partitions, apart: its heat is
    /// that customer's, not the shop's.
    pub hottest_customer_partition: String,
    pub hottest_customer_units_per_order: f64,
    /// The hottest of one product's own partitions (its item with its
    /// listing entry, a stock counter), and the order rate at which it
    /// would reach the limit: the ceiling of the hottest product's orders
    /// at this run's mix (under the flash sale, of that one product).
    pub hottest_product_partition: String,
    pub product_orders_per_second_at_limit: f64,
    pub partitions: Vec<PartitionLoad>,
    pub patterns: Vec<PatternLoad>,
}

/// Whether a table partition is one product's own: its item (and listing
/// entry), or one of its stock counters.
fn is_one_products(partition: &str) -> bool {
    partition.starts_with("table PRODUCT#") || partition.starts_with("table STOCK#")
}

/// A partition's name with every id (a UUID, a shard number, a search
/// word, a category, a user's key) made generic, so that partitions of one
/// kind add up. Upper-case words are kept, and so is the part after
/// `STATUS` or `EVENTS` (an order status, an event type).
pub fn pattern_of(partition: &str) -> String {
    let (kind, key) = partition.split_once(' ').unwrap_or(("", partition));
    let parts: Vec<&str> = key.split('#').collect();
    let generic: Vec<String> = parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            let upper = !part.is_empty() && part.chars().all(|c| c.is_ascii_uppercase() || c == '_');
            if uuid::Uuid::parse_str(part).is_ok() {
                "<id>".to_owned()
            } else if !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()) {
                "<n>".to_owned()
            } else if upper || (i > 0 && matches!(parts[i - 1], "STATUS" | "EVENTS")) {
                (*part).to_owned()
            } else if parts[0] == "SEARCH" {
                "<key>".to_owned()
            } else if parts[0] == "CATEGORY" {
                "<category>".to_owned()
            } else {
                "<id>".to_owned()
            }
        })
        .collect();
    format!("{kind} {}", generic.join("#"))
}

/// Write units: the item's size in started kilobytes, at least one.
pub fn write_units(size: usize) -> u64 {
    (size.div_ceil(1024) as u64).max(1)
}

/// An item's size as DynamoDB counts it: every attribute's name and value.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(name, value)| name.len() + value_size(value)).sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(text) => text.len(),
        // About one byte per two significant digits, plus one.
        AttributeValue::N(number) => number.trim_start_matches('-').len().div_ceil(2) + 1,
        AttributeValue::B(bytes) => bytes.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(texts) => texts.iter().map(String::len).sum(),
        AttributeValue::Ns(numbers) => numbers.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
        AttributeValue::Bs(blobs) => blobs.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(values) => 3 + values.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => 3 + map.iter().map(|(k, v)| 1 + k.len() + value_size(v)).sum::<usize>(),
        _ => 1,
    }
}

fn index_keys_of(item: &Item) -> [Option<String>; 2] {
    INDEX_KEYS.map(|(_, attribute)| match item.get(attribute) {
        Some(AttributeValue::S(value)) => Some(value.clone()),
        _ => None,
    })
}

/// The index key attributes an update expression sets or removes, names
/// and values resolved: a `SET GSI2PK = :p` with `:p` a string gives its
/// value; anything computed gives `None`.
pub fn index_key_changes(
    expression: &str,
    names: &HashMap<String, String>,
    values: &HashMap<String, AttributeValue>,
) -> (Vec<(String, Option<String>)>, Vec<String>) {
    let resolve = |path: &str| {
        let path = path.trim();
        names.get(path).cloned().unwrap_or_else(|| path.to_owned())
    };
    let is_index_key = |name: &str| INDEX_KEYS.iter().any(|(_, attribute)| *attribute == name);
    let (mut sets, mut removes) = (Vec::new(), Vec::new());
    for (clause, body) in clauses(expression) {
        for part in split_top_level(&body) {
            match clause.as_str() {
                "SET" => {
                    let Some((path, value)) = part.split_once('=') else { continue };
                    let name = resolve(path);
                    if is_index_key(&name) {
                        let value = match values.get(value.trim()) {
                            Some(AttributeValue::S(text)) => Some(text.clone()),
                            _ => None,
                        };
                        sets.push((name, value));
                    }
                }
                "REMOVE" => {
                    let name = resolve(&part);
                    if is_index_key(&name) {
                        removes.push(name);
                    }
                }
                _ => {}
            }
        }
    }
    (sets, removes)
}

/// An update expression's clauses: (`SET`/`REMOVE`/`ADD`/`DELETE`, body).
fn clauses(expression: &str) -> Vec<(String, String)> {
    const KEYWORDS: [&str; 4] = ["SET", "REMOVE", "ADD", "DELETE"];
    let mut found: Vec<(String, String)> = Vec::new();
    let mut depth = 0i32;
    let mut word = String::new();
    let mut body = String::new();
    for c in expression.chars().chain(std::iter::once(' ')) {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if c.is_whitespace() && depth == 0 {
            let upper = word.to_ascii_uppercase();
            if KEYWORDS.contains(&upper.as_str()) {
                if let Some(last) = found.last_mut() {
                    last.1 = std::mem::take(&mut body);
                }
                found.push((upper, String::new()));
                body.clear();
            } else {
                body.push_str(&word);
                body.push(' ');
            }
            word.clear();
        } else {
            word.push(c);
        }
    }
    if let Some(last) = found.last_mut() {
        last.1 = body;
    }
    found
}

/// The comma-separated parts of a clause, commas inside calls kept.
fn split_top_level(body: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let (mut depth, mut current) = (0i32, String::new());
    for c in body.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current).trim().to_owned());
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        parts.push(current.trim().to_owned());
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> AttributeValue {
        AttributeValue::S(text.to_owned())
    }

    fn item(pairs: &[(&str, &str)]) -> Item {
        pairs.iter().map(|(name, value)| ((*name).to_owned(), s(value))).collect()
    }

    fn write(pk: &str, action: Action, transactional: bool) -> Write {
        Write { pk: pk.into(), sk: "X".into(), action, transactional }
    }

    fn units(heat: &Heat, partition: &str) -> f64 {
        heat.partitions.get(partition).map_or(0.0, |load| load.units)
    }

    #[test]
    fn sizes_are_names_plus_values_and_units_are_started_kilobytes() {
        assert_eq!(item_size(&item(&[("PK", "ab"), ("SK", "c")])), 2 + 2 + 2 + 1);
        assert_eq!(value_size(&AttributeValue::N("12345".into())), 4);
        assert_eq!(write_units(0), 1);
        assert_eq!(write_units(1024), 1);
        assert_eq!(write_units(1025), 2);
        assert_eq!(write_units(3000), 3);
    }

    #[test]
    fn a_transactional_put_costs_double_on_the_table_and_single_on_each_index() {
        let mut heat = Heat::default();
        // 1,500 bytes: two units.
        let mut product = item(&[("PK", "PRODUCT#1"), ("GSI1PK", "PRODUCTS"), ("GSI2PK", "CATEGORY#books")]);
        product.insert("description".into(), s(&"x".repeat(1_500 - item_size(&product) - "description".len())));
        assert_eq!(item_size(&product), 1_500);
        heat.charge(&write("PRODUCT#1", Action::Put(product), true));
        assert_eq!(units(&heat, "table PRODUCT#1"), 4.0);
        assert_eq!(units(&heat, "GSI1 PRODUCTS"), 2.0);
        assert_eq!(units(&heat, "GSI2 CATEGORY#books"), 2.0);
    }

    #[test]
    fn an_update_rewrites_the_index_entries_of_the_item_it_was_put_with() {
        let mut heat = Heat::default();
        let product = item(&[("PK", "PRODUCT#1"), ("GSI1PK", "PRODUCTS")]);
        heat.charge(&write("PRODUCT#1", Action::Put(product), false));
        // A stock decrement in an order's transaction: the item is still
        // in GSI1, so the index partition is written too.
        let stock = Action::Update { sets: vec![], removes: vec![] };
        heat.charge(&write("PRODUCT#1", stock, true));
        assert_eq!(units(&heat, "table PRODUCT#1"), 1.0 + 2.0);
        assert_eq!(units(&heat, "GSI1 PRODUCTS"), 2.0);
    }

    #[test]
    fn a_changed_index_key_is_a_delete_from_the_old_partition_and_a_put_into_the_new() {
        let mut heat = Heat::default();
        let order = item(&[("PK", "ORDER#1"), ("entity", "order"), ("GSI2PK", "ORDERS#STATUS#pending")]);
        heat.charge(&write("ORDER#1", Action::Put(order), true));
        let confirm =
            Action::Update { sets: vec![("GSI2PK".into(), Some("ORDERS#STATUS#confirmed".into()))], removes: vec![] };
        heat.charge(&write("ORDER#1", confirm, true));
        assert_eq!(units(&heat, "GSI2 ORDERS#STATUS#pending"), 2.0, "the put, then the delete");
        assert_eq!(units(&heat, "GSI2 ORDERS#STATUS#confirmed"), 1.0);
        let drop = Action::Update { sets: vec![], removes: vec!["GSI2PK".into()] };
        heat.charge(&write("ORDER#1", drop, false));
        assert_eq!(units(&heat, "GSI2 ORDERS#STATUS#confirmed"), 2.0, "removed from the index");
        heat.charge(&write("ORDER#1", Action::Delete, false));
        assert_eq!(units(&heat, "table ORDER#1"), 2.0 + 2.0 + 1.0 + 1.0);
        assert_eq!(units(&heat, "GSI2 ORDERS#STATUS#confirmed"), 2.0, "no longer indexed when deleted");
        assert_eq!(heat.summary(10).orders, 1);
        heat.charge(&write("ORDER#2", Action::Put(item(&[("GSI2PK", "ORDERS#STATUS#paid")])), false));
        heat.restart_counting();
        assert_eq!(heat.summary(10).total_units, 0.0);
        let again = Action::Update { sets: vec![], removes: vec![] };
        heat.charge(&write("ORDER#2", again, false));
        assert_eq!(units(&heat, "GSI2 ORDERS#STATUS#paid"), 1.0);
        assert_eq!(heat.summary(10).unknown_items, 0, "items seen before the restart are still known");
    }

    #[test]
    fn an_item_never_seen_put_counts_one_unit_and_no_index() {
        let mut heat = Heat::default();
        heat.charge(&write("PRODUCT#9", Action::Update { sets: vec![], removes: vec![] }, true));
        heat.charge(&write("PRODUCT#9", Action::Check, true));
        assert_eq!(units(&heat, "table PRODUCT#9"), 4.0);
        assert_eq!(heat.partitions.len(), 1);
        assert_eq!(heat.summary(10).unknown_items, 1);
    }

    #[test]
    fn the_summary_names_the_hottest_partition_its_share_and_the_order_rate_at_its_limit() {
        let mut heat = Heat::default();
        for n in 0..4 {
            let id = format!("0190a5c4-0000-7000-8000-00000000000{n}");
            let order = item(&[("entity", "order"), ("GSI2PK", "ORDERS#STATUS#pending")]);
            heat.charge(&write(&format!("ORDER#{id}"), Action::Put(order), true));
        }
        let mut cart = item(&[("PK", "CART#1")]);
        cart.insert("lines".into(), s(&"x".repeat(5_000)));
        heat.charge(&write("CART#1", Action::Put(cart), false));
        let summary = heat.summary(3);
        // Four orders: each table partition 2 units, pending 4 units; one
        // customer's cart is hotter, but its heat is that customer's.
        assert_eq!(summary.hottest_customer_partition, "table CART#1");
        assert_eq!(summary.hottest_customer_units_per_order, 1.25);
        assert_eq!(summary.hottest_partition, "GSI2 ORDERS#STATUS#pending");
        assert_eq!(summary.total_units, 17.0);
        assert_eq!(summary.hottest_share, 0.2353);
        assert_eq!(summary.orders_per_second_at_limit, 1_000.0);
        assert_eq!(summary.partitions.len(), 3);
        let orders = summary.patterns.iter().find(|p| p.pattern == "table ORDER#<id>").unwrap();
        assert_eq!((orders.partitions, orders.units, orders.hottest_units), (4, 8.0, 2.0));
        assert_eq!(orders.orders_per_second_at_limit, 2_000.0);
        assert!(
            orders.one_customers && !summary.patterns.iter().any(|p| p.pattern.contains("STATUS") && p.one_customers)
        );
    }

    #[test]
    fn a_product_whose_orders_take_turns_over_four_counters_reaches_its_limit_at_four_times_the_rate() {
        let product = "0190a5c4-0000-7000-8000-000000000009";
        let mut heat = Heat::default();
        for n in 0..8 {
            let id = format!("0190a5c4-0000-7000-8000-00000000001{n}");
            heat.charge(&write(&format!("ORDER#{id}"), Action::Put(item(&[("entity", "order")])), true));
            let counter = item(&[("PK", "x"), ("stock", "12")]);
            heat.charge(&write(&format!("STOCK#{product}#{}", n % 4), Action::Put(counter), true));
        }
        let summary = heat.summary(3);
        // Each counter: two orders of 2 units. One item alone would take
        // 16 units, its limit at 500 orders a second.
        assert_eq!(summary.hottest_product_partition, format!("table STOCK#{product}#0"));
        assert_eq!(summary.product_orders_per_second_at_limit, 2_000.0);
        let counters = summary.patterns.iter().find(|p| p.pattern == "table STOCK#<id>#<n>").unwrap();
        assert_eq!((counters.partitions, counters.units), (4, 16.0));
    }

    #[test]
    fn patterns_make_ids_words_categories_and_shards_generic() {
        assert_eq!(pattern_of("table PRODUCT#0190a5c4-0000-7000-8000-000000000001"), "table PRODUCT#<id>");
        assert_eq!(pattern_of("GSI2 ORDERS#STATUS#pending#07"), "GSI2 ORDERS#STATUS#pending#<n>");
        assert_eq!(pattern_of("GSI1 SEARCH#lamp#IN"), "GSI1 SEARCH#<key>#IN");
        assert_eq!(pattern_of("GSI2 CATEGORY#books"), "GSI2 CATEGORY#<category>");
        assert_eq!(pattern_of("GSI1 EVENTS"), "GSI1 EVENTS");
        assert_eq!(pattern_of("GSI2 EVENTS#product.updated#3"), "GSI2 EVENTS#product.updated#<n>");
        assert_eq!(pattern_of("table PAYMENT_EVENT#refund:pi_x3pm7BOPhWYiog"), "table PAYMENT_EVENT#<id>");
        assert_eq!(
            pattern_of("table IDEMPOTENCY#0190a5c4-0000-7000-8000-000000000001#k-1"),
            "table IDEMPOTENCY#<id>#<id>"
        );
    }

    #[test]
    fn update_expressions_give_the_index_keys_they_set_or_remove() {
        let names =
            HashMap::from([("#status".to_owned(), "status".to_owned()), ("#k".to_owned(), "GSI1PK".to_owned())]);
        let values = HashMap::from([
            (":p".to_owned(), s("ORDERS#STATUS#paid")),
            (":n".to_owned(), AttributeValue::N("1".into())),
        ]);
        let (sets, removes) = index_key_changes(
            "SET #status = :to, GSI2PK = :p, x = if_not_exists(y, :n), #k = list_append(a, b) REMOVE paymentIntent, GSI2SK ADD n :n",
            &names,
            &values,
        );
        assert_eq!(
            sets,
            vec![("GSI2PK".to_owned(), Some("ORDERS#STATUS#paid".to_owned())), ("GSI1PK".to_owned(), None)]
        );
        assert!(removes.is_empty(), "GSI2SK is a sort key: the entry stays in its partition");
        let (sets, removes) = index_key_changes("remove GSI1PK, GSI1SK", &names, &values);
        assert!(sets.is_empty());
        assert_eq!(removes, vec!["GSI1PK".to_owned()]);
    }
}
