//! `events.schema.json` describes the events the code makes: every type,
//! made by the one mapping from stored changes, validates against it, and
//! the schema is strict enough that a field the code added and the schema
//! lacks would fail.

use std::path::Path;

use serde_json::Value;
use shop::domain::{
    Category, CategoryName, Description, Email, Money, Order, OrderId, OrderItem, OrderStatus, Payment, PaymentStatus,
    Product, ProductId, ProductName, Role, User, UserId, UserName, UserStatus,
};
use shop::events::{Actor, Change, Entity, Event, EventType, Mapping, events_of};
use time::OffsetDateTime;

fn schema() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events.schema.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn change(old: Option<Entity>, new: Option<Entity>) -> Change {
    Change { id: uuid::Uuid::new_v4().to_string(), at: OffsetDateTime::now_utc(), old, new }
}

/// One event of every type, through the mapping.
fn every_kind_of_event() -> Vec<Event> {
    let at = OffsetDateTime::now_utc();
    let user = User {
        id: UserId::new(),
        email: Email::parse("ada@example.com").unwrap(),
        name: UserName::parse("Ada").unwrap(),
        role: Role::Customer,
        status: UserStatus::Active,
        password_hash: "hash".into(),
        session_version: 0,
        created_at: at,
        updated_at: at,
    };
    let category = Category {
        id: uuid::Uuid::now_v7(),
        name: CategoryName::parse("Garden").unwrap(),
        description: Description::parse("Outdoors.").unwrap(),
        created_at: at,
    };
    let product = Product {
        id: ProductId::new(),
        name: ProductName::parse("Rake").unwrap(),
        description: Description::parse("Steel.").unwrap(),
        price: Money::from_minor(1999),
        category: category.name.clone(),
        stock: 6,
        stock_counters: 1,
        created_at: at,
        updated_at: at,
    };
    let changed = Product {
        name: ProductName::parse("Rake II").unwrap(),
        description: Description::parse("Steel, longer.").unwrap(),
        price: Money::from_minor(2450),
        category: CategoryName::parse("Tools").unwrap(),
        stock: 2,
        stock_counters: 1,
        ..product.clone()
    };
    let order = Order {
        id: OrderId::new(),
        user_id: user.id,
        items: vec![OrderItem { product_id: product.id, product_name: "Rake".into(), quantity: 2, price_minor: 1999 }],
        total_amount: Money::from_minor(3998),
        status: OrderStatus::Pending,
        source: shop::domain::OrderSource::Api,
        payment: Payment::default(),
        created_at: at,
        updated_at: at,
    };
    let moved = |to, by: Option<Actor>| {
        change(
            Some(Entity::Order { order: order.clone(), changed_by: None }),
            Some(Entity::Order { order: Order { status: to, ..order.clone() }, changed_by: by }),
        )
    };
    let paid = |from, to| {
        let with = |status| Order {
            payment: Payment { status, intent_id: Some("pi_1".into()), attempts: 1 },
            ..order.clone()
        };
        let payments = Actor::System { process: "payments".into() };
        change(
            Some(Entity::Order { order: with(from), changed_by: None }),
            Some(Entity::Order { order: with(to), changed_by: Some(payments) }),
        )
    };
    let admin = Actor::User { user_id: UserId::new(), role: Role::Admin };
    let changes = [
        change(None, Some(Entity::User(user.clone()))),
        change(None, Some(Entity::Category(category))),
        change(None, Some(Entity::Product(product.clone()))),
        change(Some(Entity::Product(product.clone())), Some(Entity::Product(changed))),
        change(Some(Entity::Product(product)), None),
        change(None, Some(Entity::Order { order: order.clone(), changed_by: None })),
        moved(OrderStatus::Confirmed, Some(admin.clone())),
        moved(OrderStatus::Cancelled, None),
        moved(OrderStatus::Expired, Some(Actor::reservation_expiry())),
        paid(PaymentStatus::Unpaid, PaymentStatus::Paid),
        paid(PaymentStatus::Unpaid, PaymentStatus::Failed),
        paid(PaymentStatus::RefundPending, PaymentStatus::Refunded),
    ];
    changes.iter().flat_map(|c| events_of(c, &Mapping::default())).collect()
}

#[test]
fn every_event_type_the_code_makes_validates_against_the_schema() {
    let validator = jsonschema::validator_for(&schema()).unwrap();
    let events = every_kind_of_event();
    let mut types: Vec<EventType> = events.iter().map(Event::event_type).collect();
    types.sort();
    types.dedup();
    assert_eq!(types, EventType::ALL.to_vec(), "one of every type");
    for event in &events {
        let json = serde_json::to_value(event).unwrap();
        let errors: Vec<String> = validator.iter_errors(&json).map(|e| format!("{e} at {}", e.instance_path)).collect();
        assert!(errors.is_empty(), "{}: {errors:#?}\n{json:#}", event.event_type());
    }
}

#[test]
fn the_schema_names_exactly_the_codes_types_and_refuses_what_it_does_not_describe() {
    let schema = schema();
    let listed: Vec<&str> =
        schema["properties"]["type"]["enum"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(listed, EventType::ALL.map(EventType::as_str));
    let validator = jsonschema::validator_for(&schema).unwrap();
    for event in every_kind_of_event() {
        let mut extra = serde_json::to_value(&event).unwrap();
        extra["data"]["surprise"] = Value::from(1);
        assert!(!validator.is_valid(&extra), "{}: an undeclared field passes", event.event_type());
        let mut retyped = serde_json::to_value(&event).unwrap();
        retyped["type"] =
            Value::from(if event.event_type() == EventType::OrderPlaced { "user.registered" } else { "order.placed" });
        assert!(!validator.is_valid(&retyped), "{}: data of another type passes", event.event_type());
    }
}
