//! `shop-local seed`: demo data for a local shop, on either backend.
//!
//! Six categories of 40 products each (varied names, descriptions, prices
//! and stock, some sold out), an admin and a customer whose credentials it
//! prints, and the customer's cart with a few products in it. Running it
//! again tops up what is missing and creates no duplicate: categories by
//! name, products by name within their category, users by email, the cart
//! only when the customer has none; a complete shop is reported as already
//! seeded.
//!
//! It writes to the store directly (stop `shop-local` on an embedded
//! `DATA_DIR` first; a running server's cached listings then refresh
//! within their TTL) and refuses a DynamoDB that is not on this machine:
//! demo data and a known admin password have no place in AWS.

use std::collections::HashSet;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shop::Config;
use shop::auth::PasswordHasher;
use shop::config::StoreKind;
use shop::domain::catalog::category_key;
use shop::domain::{
    Cart, Category, CategoryName, Description, Email, Money, Password, Product, ProductId, ProductQuery,
};
use shop::domain::{Role, User, UserId, UserName, UserStatus};
use shop::store::{Store, StoreError, dynamodb::table};
use time::OffsetDateTime;

/// The admin seeded when `ADMIN_EMAILS` names none.
pub const DEFAULT_ADMIN: &str = "admin@shop.local";
pub const CUSTOMER: &str = "customer@shop.local";
/// Local demo passwords, printed by the command.
const ADMIN_PASSWORD: &str = "admin-demo-password";
const CUSTOMER_PASSWORD: &str = "customer-demo-password";
/// At most the 48 adjective x noun pairs of a category.
const PRODUCTS_PER_CATEGORY: usize = 40;

/// One category of the demo catalog: its products are adjective x noun
/// pairs, priced within `cents`.
struct Range {
    category: &'static str,
    description: &'static str,
    adjectives: &'static [&'static str],
    nouns: &'static [&'static str],
    cents: (u64, u64),
}

const CATALOG: &[Range] = &[
    Range {
        category: "Electronics",
        description: "Gadgets, audio and accessories",
        adjectives: &["Wireless", "Compact", "Smart", "Portable", "Pro", "Noise-Cancelling", "Ultra-Slim", "Rugged"],
        nouns: &["Headphones", "Speaker", "Charger", "Keyboard", "Webcam", "Monitor"],
        cents: (1_499, 89_999),
    },
    Range {
        category: "Books",
        description: "Fiction, non-fiction and reference",
        adjectives: &[
            "Illustrated",
            "Annotated",
            "Pocket",
            "Collected",
            "Hardcover",
            "First-Edition",
            "Abridged",
            "Complete",
        ],
        nouns: &["Atlas", "Cookbook", "Novel", "Field Guide", "Anthology", "Biography"],
        cents: (599, 6_999),
    },
    Range {
        category: "Kitchen",
        description: "Cookware and tools for every kitchen",
        adjectives: &["Cast-Iron", "Non-Stick", "Bamboo", "Stainless", "Ceramic", "Copper", "Enamel", "Carbon-Steel"],
        nouns: &["Skillet", "Knife", "Cutting Board", "Dutch Oven", "Whisk", "Kettle"],
        cents: (899, 24_999),
    },
    Range {
        category: "Garden",
        description: "Plants, tools and outdoor living",
        adjectives: &["Heirloom", "Galvanised", "Folding", "Weatherproof", "Solar", "Raised", "Organic", "Ergonomic"],
        nouns: &["Trowel", "Planter", "Hose Reel", "Seed Kit", "Lantern", "Pruner"],
        cents: (499, 19_999),
    },
    Range {
        category: "Outdoors",
        description: "Camping, hiking and travel gear",
        adjectives: &[
            "Ultralight",
            "Waterproof",
            "Insulated",
            "Packable",
            "Reflective",
            "Thermal",
            "Windproof",
            "Trail",
        ],
        nouns: &["Tent", "Backpack", "Sleeping Bag", "Headlamp", "Water Bottle", "Jacket"],
        cents: (1_299, 49_999),
    },
    Range {
        category: "Toys",
        description: "Games and toys for all ages",
        adjectives: &["Wooden", "Magnetic", "Classic", "Glow-in-the-Dark", "Giant", "Travel", "Musical", "Building"],
        nouns: &["Puzzle", "Board Game", "Train Set", "Kite", "Robot Kit", "Marble Run"],
        cents: (399, 14_999),
    },
];

/// Runs the command; what to print.
pub async fn run(config: &Config, store: &dyn Store) -> Result<String, String> {
    if config.store == StoreKind::DynamoDb && !config.dynamodb_endpoint.as_deref().is_some_and(table::is_local_endpoint)
    {
        return Err("refusing to seed a DynamoDB that is not on this machine: demo data is for local stores".into());
    }
    // One fixed seed: the same shop every time, so a top-up knows its names.
    let mut rng = StdRng::seed_from_u64(20_261_126);
    let mut created = (0, 0);
    for range in CATALOG {
        created.0 += usize::from(ensure_category(store, range.category, range.description).await?);
        created.1 += ensure_products(store, range, &mut rng).await?;
    }
    let admin_email = config.admin_emails.first().cloned().unwrap_or_else(|| DEFAULT_ADMIN.to_owned());
    let hasher = PasswordHasher::new();
    let new_admin = ensure_user(store, &hasher, &admin_email, "Demo Admin", ADMIN_PASSWORD, Role::Admin).await?;
    let new_customer =
        ensure_user(store, &hasher, CUSTOMER, "Demo Customer", CUSTOMER_PASSWORD, Role::Customer).await?;
    let new_cart = ensure_cart(config, store, CUSTOMER).await?;
    let mut report = if created == (0, 0) && !new_admin && !new_customer && !new_cart {
        "The shop is already seeded: nothing was created.\n".to_owned()
    } else {
        format!("Seeded {} categories and {} products.\n", created.0, created.1)
    };
    let password =
        |new: bool, password: &str| if new { password.to_owned() } else { "(unchanged; as first seeded)".into() };
    report.push_str(&format!("admin:    {admin_email} / {}\n", password(new_admin, ADMIN_PASSWORD)));
    report.push_str(&format!("customer: {CUSTOMER} / {}", password(new_customer, CUSTOMER_PASSWORD)));
    if new_cart {
        report.push_str(" (with a cart: GET /api/cart, then POST /api/checkout)");
    }
    Ok(report)
}

/// Units of the first in-stock products, newest first, that a new demo
/// cart holds.
const DEMO_CART: [u64; 3] = [1, 2, 1];

/// Fills the customer's cart unless they have one; whether it did.
async fn ensure_cart(config: &Config, store: &dyn Store, email: &str) -> Result<bool, String> {
    let email = Email::parse(email)?;
    let Some(customer) = store.user_by_email(&email).await.map_err(|e| e.to_string())? else { return Ok(false) };
    let now = OffsetDateTime::now_utc();
    if store.cart(customer.id, now).await.map_err(|e| e.to_string())?.is_some() {
        return Ok(false);
    }
    let query = ProductQuery { in_stock: Some(true), limit: DEMO_CART.len(), ..Default::default() };
    let products = store.list_products(&query).await.map_err(|e| e.to_string())?.items;
    let mut cart = Cart::empty(customer.id);
    for (product, quantity) in products.iter().zip(DEMO_CART) {
        cart.set_quantity(product, quantity.min(product.stock)).map_err(|e| e.to_string())?;
    }
    if cart.is_empty() {
        return Ok(false);
    }
    let cart = cart.next_version(now);
    match store.save_cart(&cart, now + config.cart_ttl).await {
        Ok(()) => Ok(true),
        // Filled meanwhile by the customer: theirs stands.
        Err(StoreError::CartChanged) => Ok(false),
        Err(err) => Err(err.to_string()),
    }
}

async fn ensure_category(store: &dyn Store, name: &str, description: &str) -> Result<bool, String> {
    let category = Category {
        id: uuid::Uuid::now_v7(),
        name: CategoryName::parse(name)?,
        description: Description::parse(description)?,
        created_at: OffsetDateTime::now_utc(),
    };
    match store.create_category(&category).await {
        Ok(()) => Ok(true),
        Err(StoreError::CategoryTaken) => Ok(false),
        Err(err) => Err(err.to_string()),
    }
}

/// Creates the category's products that are not there yet. The generator
/// is drawn the same way whether a product is created or found, so a
/// top-up makes exactly the products a first run would have.
async fn ensure_products(store: &dyn Store, range: &Range, rng: &mut StdRng) -> Result<usize, String> {
    let Range { category, adjectives, nouns, cents: (low, high), .. } = *range;
    let existing = product_names(store, category).await?;
    let mut created = 0;
    for index in 0..PRODUCTS_PER_CATEGORY {
        // Stepping through the adjective x noun grid by a stride prime to
        // its size visits distinct pairs in a mixed order.
        let pair = index * 7 % (adjectives.len() * nouns.len());
        let (adjective, noun) = (adjectives[pair % adjectives.len()], nouns[pair / adjectives.len()]);
        let name = format!("{adjective} {noun}");
        let price = rng.random_range(low..=high) / 100 * 100 + 99;
        // About one in eight sold out, the rest 1 to 250 in stock.
        let stock = if rng.random_range(0..8) == 0 { 0 } else { rng.random_range(1..=250) };
        if existing.contains(&name) {
            continue;
        }
        let now = OffsetDateTime::now_utc();
        let product = Product {
            id: ProductId::new(),
            name: shop::domain::ProductName::parse(&name)?,
            description: Description::parse(&format!(
                "A {} {} from our {category} range: {}.",
                adjective.to_lowercase(),
                noun.to_lowercase(),
                if stock == 0 { "back soon" } else { "ships in two days" }
            ))?,
            price: Money::from_minor(price.min(Money::MAX_PRICE.minor())),
            category: CategoryName::parse(category)?,
            stock,
            stock_counters: 1,
            created_at: now,
            updated_at: now,
        };
        store.create_product(&product).await.map_err(|e| e.to_string())?;
        created += 1;
    }
    Ok(created)
}

/// The names of a category's products, paged through.
async fn product_names(store: &dyn Store, category: &str) -> Result<HashSet<String>, String> {
    let mut names = HashSet::new();
    let mut query = ProductQuery { category: Some(category_key(category)), limit: 100, ..Default::default() };
    loop {
        let page = store.list_products(&query).await.map_err(|e| e.to_string())?;
        names.extend(page.items.iter().map(|product| product.name.as_str().to_owned()));
        match page.next {
            Some(next) => query.after = Some(next),
            None => return Ok(names),
        }
    }
}

/// Creates the user unless the email is taken; whether it was created.
async fn ensure_user(
    store: &dyn Store,
    hasher: &PasswordHasher,
    email: &str,
    name: &str,
    password: &str,
    role: Role,
) -> Result<bool, String> {
    let email = Email::parse(email).map_err(|e| format!("`{email}` {e}"))?;
    if store.user_by_email(&email).await.map_err(|e| e.to_string())?.is_some() {
        return Ok(false);
    }
    let password = Password::parse(password)?;
    let now = OffsetDateTime::now_utc();
    let user = User {
        id: UserId::new(),
        email,
        name: UserName::parse(name)?,
        role,
        status: UserStatus::Active,
        password_hash: hasher.hash(&password).await.map_err(|e| e.to_string())?,
        session_version: 0,
        created_at: now,
        updated_at: now,
    };
    match store.create_user(&user).await {
        Ok(()) => Ok(true),
        Err(StoreError::EmailTaken) => Ok(false),
        Err(err) => Err(err.to_string()),
    }
}
