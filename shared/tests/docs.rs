//! The manual (`docs/`) against the code: the configuration table names
//! every variable `config.rs` reads, the read-consistency table every
//! route's function, and the state diagrams the workflow the code enforces.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use shop::domain::{OrderStatus, PaymentStatus, Role};
use shop::routes::ROUTES;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The backticked names in the first column of the table rows of `text`.
fn first_column_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|line| line.starts_with("| `"))
        .flat_map(|line| {
            let cell = line.split('|').nth(1).unwrap_or_default();
            cell.split('`').skip(1).step_by(2).map(str::to_owned).collect::<Vec<_>>()
        })
        .collect()
}

/// The quoted upper-case names in `source`: the variables it reads.
fn quoted_variables(source: &str) -> BTreeSet<String> {
    source
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| s.len() >= 3 && s.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_configuration_table_names_every_variable_the_code_reads_and_no_other() {
    let table = first_column_names(&read("docs/configuration.md"));
    // Set by Lambda itself, not by whoever configures the shop.
    let platform = ["AWS_LAMBDA_FUNCTION_NAME"];
    let read_by_config: BTreeSet<String> = quoted_variables(&read("shared/src/config.rs"))
        .into_iter()
        .filter(|v| !platform.contains(&v.as_str()))
        .collect();
    let missing: Vec<&String> = read_by_config.difference(&table).collect();
    assert!(missing.is_empty(), "variables config.rs reads that docs/configuration.md lacks: {missing:?}");
    // Every documented variable is read somewhere (config.rs, or the TLS
    // trust store's own variables).
    let everything = read("shared/src/config.rs") + &read("shared/src/tls.rs");
    for variable in &table {
        assert!(everything.contains(&format!("\"{variable}\"")), "{variable} is documented but read nowhere");
    }
}

#[test]
fn the_read_consistency_table_covers_every_routes_function() {
    let api = read("docs/api.md");
    let section = api.split("## Read consistency").nth(1).expect("a Read consistency section");
    let section = section.split("\n## ").next().unwrap();
    let named = first_column_names(section);
    let missing: Vec<&str> = ROUTES
        .iter()
        .map(|route| route.function)
        .filter(|function| {
            !named.contains(*function)
                && !named.iter().any(|name| name.strip_suffix('*').is_some_and(|prefix| function.starts_with(prefix)))
        })
        .collect();
    assert!(missing.is_empty(), "functions without a row in docs/api.md's Read consistency: {missing:?}");
}

/// The `from --> to` edges of the Mermaid block after `marker` in `text`.
fn diagram_edges(text: &str, marker: &str) -> BTreeSet<(String, String)> {
    let after = text.split(marker).nth(1).unwrap_or_else(|| panic!("no `{marker}`"));
    let block = after.split("```mermaid").nth(1).unwrap().split("```").next().unwrap();
    block
        .lines()
        .filter_map(|line| {
            let (from, rest) = line.trim().split_once(" --> ")?;
            let to = rest.split(':').next()?.trim();
            Some((from.trim().to_owned(), to.to_owned()))
        })
        .filter(|(from, to)| from != "[*]" && to != "[*]")
        .collect()
}

#[test]
fn the_order_diagram_is_the_workflow_the_code_enforces() {
    let page = read("docs/orders-and-payments.md");
    let drawn = diagram_edges(&page, "The order's fulfilment status");
    let mut allowed: BTreeSet<(String, String)> = BTreeSet::new();
    for from in OrderStatus::ALL {
        for to in OrderStatus::ALL {
            if from.check_transition(to, Role::Admin).is_ok() {
                allowed.insert((from.as_str().to_owned(), to.as_str().to_owned()));
            }
        }
    }
    // The two moves no caller makes: the reservation expiry's, and a late
    // payment's (shop::domain::payment::decide).
    allowed.insert(("pending".into(), "expired".into()));
    allowed.insert(("expired".into(), "confirmed".into()));
    assert_eq!(drawn, allowed);
}

#[test]
fn the_payment_diagram_draws_exactly_the_payment_statuses() {
    let page = read("docs/orders-and-payments.md");
    let drawn = diagram_edges(&page, "The order's `paymentStatus`");
    let states: BTreeSet<String> = drawn.iter().flat_map(|(from, to)| [from.clone(), to.clone()]).collect();
    let statuses: BTreeSet<String> = PaymentStatus::ALL.iter().map(|s| s.as_str().to_owned()).collect();
    assert_eq!(states, statuses);
}

#[test]
fn the_crate_documentation_points_to_the_architecture_page() {
    assert!(read("shared/src/lib.rs").contains("docs/architecture.md"));
    assert!(repo_root().join("docs/architecture.md").exists());
}
