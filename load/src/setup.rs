//! The setup phase: everything the scenarios need, created through the API
//! of the server under test (nothing is pre-baked into it).

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::options::Options;

pub const CATEGORIES: &[&str] = &["Electronics", "Books", "Garden"];
pub const PASSWORD: &str = "correct horse battery";
/// Signed-in customers the ordering scenario shares.
const CUSTOMERS: usize = 20;
/// The catalog's vocabulary: every product's name and description are
/// drawn from it, so a search for one of them matches a sixteenth to a
/// third of the catalog, whatever its size.
pub const WORDS: &[&str] = &[
    "wireless", "laptop", "cable", "garden", "novel", "lamp", "stand", "charger", "guide", "kit", "ceramic", "mug",
    "leather", "wallet", "cotton", "shirt",
];
/// The word only the catalog's first (oldest) product has: the one match a
/// newest-first read would reach last.
pub const RARE_WORD: &str = "zephyrine";
/// A word no product has.
pub const ABSENT_WORD: &str = "quokka";

/// What the scenarios use.
pub struct Fixtures {
    pub products: Vec<String>,
    pub customer_tokens: Vec<String>,
    /// The flash sale's one product (`--units` in stock), when it runs.
    pub flash_product: Option<String>,
    /// Unique per run, so registrations never collide with earlier runs.
    pub run_id: u128,
}

pub async fn prepare(options: &Options) -> Result<Fixtures, String> {
    let client = Client::new();
    let base = &options.base_url;
    let admin = admin_token(&client, base, &options.admin_email).await?;
    for name in CATEGORIES {
        let response = post(&client, &format!("{base}/api/categories"), Some(&admin), &json!({ "name": name })).await?;
        if response.0 != StatusCode::CREATED && response.0 != StatusCode::CONFLICT {
            return Err(format!("creating category {name}: {} {}", response.0, response.1));
        }
    }
    let mut products = Vec::with_capacity(options.products);
    for chunk in (0..options.products).collect::<Vec<_>>().chunks(16) {
        let creations = chunk.iter().map(|&i| {
            let name = if i == 0 {
                format!("{} Reading Lamp", title(RARE_WORD))
            } else {
                format!("{} {} {i}", title(WORDS[i % WORDS.len()]), WORDS[(i / 3) % WORDS.len()])
            };
            let body = json!({
                "name": name,
                "description": format!("A {} for the {}.", WORDS[(i * 7) % WORDS.len()], WORDS[(i * 3) % WORDS.len()]),
                "price": ((i * 37) % 50_000 + 100) as f64 / 100.0,
                "category": CATEGORIES[i % CATEGORIES.len()],
                // Enough that the ordering scenario never runs out.
                "stock": 1_000_000_000u64,
            });
            let (client, url, admin) = (&client, format!("{base}/api/products"), &admin);
            async move { post(client, &url, Some(admin), &body).await }
        });
        for (status, body) in futures::future::join_all(creations).await.into_iter().collect::<Result<Vec<_>, _>>()? {
            if status != StatusCode::CREATED {
                return Err(format!("creating a product: {status} {body}"));
            }
            products.push(body["id"].as_str().unwrap_or_default().to_owned());
        }
    }
    let run_id = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    let mut customer_tokens = Vec::with_capacity(CUSTOMERS);
    for i in 0..CUSTOMERS {
        let body = json!({"email": format!("load-customer-{run_id}-{i}@example.com"), "password": PASSWORD, "name": "Load Customer"});
        let (status, body) = post(&client, &format!("{base}/api/auth/register"), None, &body).await?;
        if status != StatusCode::CREATED {
            return Err(format!("registering a customer: {status} {body}"));
        }
        customer_tokens.push(body["token"].as_str().unwrap_or_default().to_owned());
    }
    let flash_product = if options.weights.flash_sale > 0 {
        let body = json!({
            "name": "Flash Sale Lamp",
            "description": "Limited units, many buyers.",
            "price": 19.99,
            "category": CATEGORIES[0],
            "stock": options.units,
            "stockCounters": options.counters,
        });
        let (status, body) = post(&client, &format!("{base}/api/products"), Some(&admin), &body).await?;
        if status != StatusCode::CREATED {
            return Err(format!("creating the flash-sale product: {status} {body}"));
        }
        body["id"].as_str().map(str::to_owned)
    } else {
        None
    };
    Ok(Fixtures { products, customer_tokens, flash_product, run_id })
}

/// Registers the admin, or signs in if an earlier run registered it; the
/// account must be an admin (its email in the server's ADMIN_EMAILS).
async fn admin_token(client: &Client, base: &str, email: &str) -> Result<String, String> {
    let credentials = json!({"email": email, "password": PASSWORD, "name": "Load Admin"});
    let (mut status, mut body) = post(client, &format!("{base}/api/auth/register"), None, &credentials).await?;
    if status == StatusCode::CONFLICT {
        let login = json!({"email": email, "password": PASSWORD});
        (status, body) = post(client, &format!("{base}/api/auth/login"), None, &login).await?;
    }
    if !status.is_success() {
        return Err(format!("signing in the admin {email}: {status} {body}"));
    }
    if body["user"]["role"] != "admin" {
        return Err(format!("{email} is not an admin: start the server with ADMIN_EMAILS={email}"));
    }
    Ok(body["token"].as_str().unwrap_or_default().to_owned())
}

async fn post(client: &Client, url: &str, token: Option<&str>, body: &Value) -> Result<(StatusCode, Value), String> {
    let mut request = client.post(url).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|e| format!("POST {url}: {e}"))?;
    let status = response.status();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    Ok((status, body))
}

fn title(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}
