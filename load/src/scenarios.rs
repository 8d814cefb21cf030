//! The goose scenarios. Goose shares the virtual users among them by
//! weight; each user runs its scenario's transactions in a loop with no
//! think time (a shopper first signs up, once). A request succeeds only with the status its scenario
//! expects; any other status, and any transport error, is a failure.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use goose::config::GooseConfiguration;
use goose::metrics::{GooseCoordinatedOmissionMitigation, GooseMetrics};
use goose::prelude::*;
use rand::Rng;
use rand::seq::IndexedRandom;
use serde_json::{Value, json};

use crate::options::Options;
use crate::setup::{ABSENT_WORD, Fixtures, PASSWORD, RARE_WORD, WORDS};

static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
static REGISTRATIONS: AtomicU64 = AtomicU64::new(0);
/// The flash sale's outcomes: orders that won, buyers told it sold out
/// (409), 429s (each asked again), and anything else (a failure, as is a
/// buyer still busy after every retry).
pub static FLASH_WON: AtomicU64 = AtomicU64::new(0);
pub static FLASH_SOLD_OUT: AtomicU64 = AtomicU64::new(0);
pub static FLASH_BUSY: AtomicU64 = AtomicU64::new(0);
pub static FLASH_OTHER: AtomicU64 = AtomicU64::new(0);

/// Listing queries a storefront sends.
const LISTINGS: &[&str] = &[
    "/api/products",
    "/api/products?limit=50",
    "/api/products?category=Electronics",
    "/api/products?category=Books&maxPrice=100",
    "/api/products?inStock=true&minPrice=20",
    "/api/categories",
];
const SEARCHES: &[&str] = &["wireless", "laptop stand", "garden", "novel", "charger kit", "lamp"];

/// The searches of the `search` scenario, each its own request name in
/// the report: (kind, query string; `{word}` is a vocabulary word drawn
/// per request, `{word2}` another, `{prefix}` the first two or three
/// letters of one, `{rare}` and `{absent}` the setup's rare and absent
/// words).
pub const SEARCH_KINDS: &[(&str, &str)] = &[
    ("absent word", "q={absent}"),
    ("rare word", "q={rare}"),
    ("common word", "q={word}"),
    ("common prefix", "q={prefix}"),
    ("common + category", "q={word}&category=Electronics"),
    ("common + category + price", "q={word}&category=Books&minPrice=50&maxPrice=150"),
    ("common + price", "q={word}&minPrice=50&maxPrice=150"),
    ("common + inStock", "q={word}&inStock=true"),
    ("two common words", "q={word}+{word2}"),
    ("common + rare word", "q={word}+{rare}"),
];

pub fn install(fixtures: Fixtures) {
    let _ = FIXTURES.set(fixtures);
}

fn fixtures() -> &'static Fixtures {
    FIXTURES.get().expect("the setup phase ran before the attack")
}

fn pick<T>(items: &[T]) -> &T {
    &items[rand::rng().random_range(0..items.len())]
}

/// Runs the attack and returns goose's metrics.
pub async fn attack(options: &Options) -> Result<GooseMetrics, String> {
    let mut config = GooseConfiguration::default();
    config.host = Some(options.base_url.clone());
    config.users = Some(options.users);
    if options.ramp_up > 0 {
        config.increase_time = Some(format!("{}s", options.ramp_up));
    } else {
        config.increase_rate = Some(options.users.to_string());
    }
    config.run_time = Some(format!("{}s", options.duration));
    // Quiet goose's own report: ours follows. No control servers: nothing
    // of this tool listens on a port.
    config.quiet = 1;
    config.no_print_metrics = true;
    config.no_telnet = true;
    config.no_gzip = true;
    config.co_mitigation = Some(GooseCoordinatedOmissionMitigation::Average);
    let weights = options.weights;
    let mut attack = GooseAttack::initialize_with_config(config).map_err(|e| e.to_string())?;
    let scenarios = [
        (
            weights.registration,
            scenario!("registration").register_transaction(transaction!(register).set_name("register")),
        ),
        (
            weights.browsing,
            scenario!("browsing")
                .register_transaction(transaction!(browse_list).set_name("list"))
                .register_transaction(transaction!(browse_search).set_name("search"))
                .register_transaction(transaction!(browse_product).set_name("product")),
        ),
        (weights.ordering, scenario!("ordering").register_transaction(transaction!(order_and_read).set_name("order"))),
        (weights.health, scenario!("health").register_transaction(transaction!(health).set_name("health"))),
        (weights.searching, scenario!("searching").register_transaction(transaction!(search).set_name("search"))),
        (weights.flash_sale, scenario!("flash sale").register_transaction(transaction!(buy_flash).set_name("buy"))),
        (
            weights.shopping,
            scenario!("shopping")
                .register_transaction(transaction!(sign_up_shopper).set_name("sign up").set_on_start())
                .register_transaction(transaction!(shop_and_check_out).set_name("shop")),
        ),
    ];
    for (weight, scenario) in scenarios {
        if weight > 0 {
            attack = attack.register_scenario(scenario.set_weight(weight).map_err(|e| e.to_string())?);
        }
    }
    attack.execute().await.map_err(|e| e.to_string())
}

async fn send(user: &mut GooseUser, request: GooseRequest<'_>) -> Result<Option<Value>, Box<TransactionError>> {
    let goose = user.request(request).await?;
    Ok(match goose.response {
        Ok(response) => response.json::<Value>().await.ok(),
        Err(_) => None,
    })
}

async fn register(user: &mut GooseUser) -> TransactionResult {
    let n = REGISTRATIONS.fetch_add(1, Ordering::Relaxed);
    let body = json!({
        "email": format!("load-{}-{n}@example.com", fixtures().run_id),
        "password": PASSWORD,
        "name": "Load User",
    });
    let builder = user.get_request_builder(&GooseMethod::Post, "/api/auth/register")?.json(&body);
    let request = GooseRequest::builder()
        .set_request_builder(builder)
        .name("registration: register")
        .expect_status_code(201)
        .build();
    send(user, request).await?;
    Ok(())
}

async fn browse_list(user: &mut GooseUser) -> TransactionResult {
    let request = GooseRequest::builder().path(*pick(LISTINGS)).name("browsing: list").expect_status_code(200).build();
    send(user, request).await?;
    Ok(())
}

async fn browse_search(user: &mut GooseUser) -> TransactionResult {
    let path = format!("/api/products?q={}", pick(SEARCHES).replace(' ', "+"));
    let request = GooseRequest::builder().path(path.as_str()).name("browsing: search").expect_status_code(200).build();
    send(user, request).await?;
    Ok(())
}

/// One search of a kind drawn from [`SEARCH_KINDS`], named after it.
async fn search(user: &mut GooseUser) -> TransactionResult {
    let (kind, query) = *pick(SEARCH_KINDS);
    let path = format!("/api/products?{}", search_query(query, &mut rand::rng()));
    let name = format!("search: {kind}");
    let request = GooseRequest::builder().path(path.as_str()).name(name.as_str()).expect_status_code(200).build();
    send(user, request).await?;
    Ok(())
}

/// `template` with its placeholders filled from the catalog's vocabulary.
fn search_query(template: &str, rng: &mut impl Rng) -> String {
    let words: Vec<&str> = WORDS.choose_multiple(rng, 2).copied().collect();
    let prefix = &words[0][..rng.random_range(2..=3)];
    template
        .replace("{word}", words[0])
        .replace("{word2}", words[1])
        .replace("{prefix}", prefix)
        .replace("{rare}", RARE_WORD)
        .replace("{absent}", ABSENT_WORD)
}

async fn browse_product(user: &mut GooseUser) -> TransactionResult {
    let path = format!("/api/products/{}", pick(&fixtures().products));
    let request = GooseRequest::builder().path(path.as_str()).name("browsing: product").expect_status_code(200).build();
    send(user, request).await?;
    Ok(())
}

/// Places an order as a signed-in customer, then reads it back.
async fn order_and_read(user: &mut GooseUser) -> TransactionResult {
    let token = pick(&fixtures().customer_tokens).clone();
    let body = json!({ "items": [{ "productId": pick(&fixtures().products), "quantity": 1 }] });
    let builder = user.get_request_builder(&GooseMethod::Post, "/api/orders")?.bearer_auth(&token).json(&body);
    let request =
        GooseRequest::builder().set_request_builder(builder).name("ordering: place").expect_status_code(201).build();
    let Some(order) = send(user, request).await? else { return Ok(()) };
    let Some(id) = order["id"].as_str() else { return Ok(()) };
    let path = format!("/api/orders/{id}");
    let builder = user.get_request_builder(&GooseMethod::Get, &path)?.bearer_auth(&token);
    let request =
        GooseRequest::builder().set_request_builder(builder).name("ordering: read").expect_status_code(200).build();
    send(user, request).await?;
    Ok(())
}

/// A shopper's own account: carts are per user, so shoppers sharing one
/// would check out each other's carts.
#[derive(Clone)]
struct Shopper {
    token: String,
}

/// Once per shopper, before its loop: registers an account of its own.
async fn sign_up_shopper(user: &mut GooseUser) -> TransactionResult {
    let n = REGISTRATIONS.fetch_add(1, Ordering::Relaxed);
    let body = json!({
        "email": format!("shopper-{}-{n}@example.com", fixtures().run_id),
        "password": PASSWORD,
        "name": "Load Shopper",
    });
    let builder = user.get_request_builder(&GooseMethod::Post, "/api/auth/register")?.json(&body);
    let request =
        GooseRequest::builder().set_request_builder(builder).name("shopping: sign up").expect_status_code(201).build();
    if let Some(token) = send(user, request).await?.and_then(|session| session["token"].as_str().map(str::to_owned)) {
        user.set_session_data(Shopper { token });
    }
    Ok(())
}

/// Sends `method path` (with `body` as JSON) signed in with `token`, named
/// `name` in the report, expecting `status`; the answer's JSON.
async fn signed_in(
    user: &mut GooseUser,
    (method, path, body): (GooseMethod, &str, Option<Value>),
    token: &str,
    (name, status): (&str, u16),
) -> Result<Option<Value>, Box<TransactionError>> {
    let mut builder = user.get_request_builder(&method, path)?.bearer_auth(token);
    if let Some(body) = body {
        builder = builder.json(&body);
    }
    let request = GooseRequest::builder().set_request_builder(builder).name(name).expect_status_code(status).build();
    send(user, request).await
}

/// Browses a listing, puts 1 to 4 products in the cart (1 to 3 units
/// each), takes the last one out again one time in four, reads the cart,
/// checks out, and pays when the shop takes payments; one time in ten it
/// empties the cart instead (an abandoned cart), and one order in ten is
/// cancelled after checkout (and payment: a refund follows).
async fn shop_and_check_out(user: &mut GooseUser) -> TransactionResult {
    let Some(token) = user.get_session_data::<Shopper>().map(|shopper| shopper.token.clone()) else {
        // The sign-up failed (a 503 under overload): try again rather than
        // loop on nothing, which would spin this user on the load's cores.
        return sign_up_shopper(user).await;
    };
    let request =
        GooseRequest::builder().path(*pick(LISTINGS)).name("shopping: browse").expect_status_code(200).build();
    send(user, request).await?;
    let (chosen, remove_one, abandon, cancel) = {
        let mut rng = rand::rng();
        // Distinct products, so removing one never empties the cart.
        let count = rng.random_range(1..=4);
        let chosen: Vec<String> = fixtures().products.choose_multiple(&mut rng, count).cloned().collect();
        (chosen, rng.random_range(0..4) == 0, rng.random_range(0..10) == 0, rng.random_range(0..10) == 0)
    };
    for product in &chosen {
        let (path, line) =
            (format!("/api/cart/items/{product}"), json!({ "quantity": rand::rng().random_range(1..=3) }));
        signed_in(user, (GooseMethod::Put, &path, Some(line)), &token, ("shopping: add to cart", 200)).await?;
    }
    if let (true, [_, .., last]) = (remove_one, chosen.as_slice()) {
        let path = format!("/api/cart/items/{last}");
        signed_in(user, (GooseMethod::Delete, &path, None), &token, ("shopping: remove from cart", 200)).await?;
    }
    if abandon {
        signed_in(user, (GooseMethod::Delete, "/api/cart", None), &token, ("shopping: empty cart", 204)).await?;
        return Ok(());
    }
    signed_in(user, (GooseMethod::Get, "/api/cart", None), &token, ("shopping: view cart", 200)).await?;
    let order =
        signed_in(user, (GooseMethod::Post, "/api/checkout", None), &token, ("shopping: checkout", 201)).await?;
    // A shop taking payments answers the order's PaymentIntent: pay it
    // server-side with Stripe's test card (the confirm, the webhook and the
    // order's confirmation follow at the shop).
    let Some(order) = order else { return Ok(()) };
    let id = order["id"].as_str().unwrap_or_default();
    if order["payment"].is_object() {
        let path = format!("/api/orders/{id}/payment");
        let card = json!({ "paymentMethod": "pm_card_visa" });
        signed_in(user, (GooseMethod::Post, &path, Some(card)), &token, ("shopping: pay", 200)).await?;
    }
    if cancel {
        let (path, body) = (format!("/api/orders/{id}/status"), json!({ "status": "cancelled" }));
        signed_in(user, (GooseMethod::Put, &path, Some(body)), &token, ("shopping: cancel", 200)).await?;
    }
    Ok(())
}

/// Times a flash-sale buyer asks again after a 429, waiting what its
/// `Retry-After` says each time, before giving up (a failure).
const FLASH_RETRIES: usize = 10;

/// One unit of the flash-sale product, as a signed-in customer: a 201 (an
/// order won) and a 409 (sold out) are both right answers. A 429 (no turn
/// in time: the product is busy) is asked again after its `Retry-After`,
/// as a client is told to, up to [`FLASH_RETRIES`] times; each is counted.
/// Anything else is a failure.
async fn buy_flash(user: &mut GooseUser) -> TransactionResult {
    let Some(product) = fixtures().flash_product.clone() else { return Ok(()) };
    let token = pick(&fixtures().customer_tokens).clone();
    let body = json!({ "items": [{ "productId": product, "quantity": 1 }] });
    for _ in 0..=FLASH_RETRIES {
        let builder = user.get_request_builder(&GooseMethod::Post, "/api/orders")?.bearer_auth(&token).json(&body);
        let request = GooseRequest::builder().set_request_builder(builder).name("flash sale: buy").build();
        let mut goose = user.request(request).await?;
        match goose.request.status_code {
            201 => {
                FLASH_WON.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            409 => {
                FLASH_SOLD_OUT.fetch_add(1, Ordering::Relaxed);
                return user.set_success(&mut goose.request);
            }
            429 => {
                FLASH_BUSY.fetch_add(1, Ordering::Relaxed);
                let wait = goose
                    .response
                    .as_ref()
                    .ok()
                    .and_then(|response| response.headers().get("retry-after"))
                    .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
                    .unwrap_or(1);
                user.set_success(&mut goose.request)?;
                tokio::time::sleep(std::time::Duration::from_secs(wait.min(5))).await;
            }
            _ => {
                FLASH_OTHER.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
        }
    }
    // Still busy after every retry: this buyer got no answer.
    FLASH_OTHER.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

async fn health(user: &mut GooseUser) -> TransactionResult {
    let request = GooseRequest::builder().path("/health").name("health: check").expect_status_code(200).build();
    send(user, request).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_search_kind_becomes_a_query_the_api_takes() {
        let mut rng = rand::rng();
        for (kind, template) in SEARCH_KINDS {
            for _ in 0..20 {
                let query = search_query(template, &mut rng);
                assert!(!query.contains('{'), "{kind}: {query}");
                let words = query.split('&').next().unwrap().trim_start_matches("q=");
                assert!(words.split('+').all(|w| w.len() >= 2 && w.chars().all(|c| c.is_ascii_lowercase())), "{query}");
            }
        }
        assert_eq!(search_query("q={rare}+{absent}", &mut rng), format!("q={RARE_WORD}+{ABSENT_WORD}"));
        let two = search_query("q={word}+{word2}", &mut rng);
        let (first, second) = two.trim_start_matches("q=").split_once('+').unwrap();
        assert_ne!(first, second, "two different words");
    }
}
