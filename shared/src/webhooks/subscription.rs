//! A subscription: where to POST, which event types, and the secrets its
//! deliveries are signed with.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::events::EventType;

/// Standard Webhooks' prefix of a secret; the rest is the base64 key.
const SECRET_PREFIX: &str = "whsec_";
/// Random bytes of a new key (the specification asks for 24 to 64).
const KEY_BYTES: usize = 32;
/// The longest description kept.
pub const MAX_DESCRIPTION: usize = 200;

/// A signing secret, `whsec_` + base64 of the key. Shown once, in the
/// answer that made it; never in a listing or a log (no `Debug` of the key).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    pub fn generate() -> Self {
        let mut key = [0u8; KEY_BYTES];
        rand::rng().fill_bytes(&mut key);
        WebhookSecret(format!("{SECRET_PREFIX}{}", STANDARD.encode(key)))
    }

    /// A stored secret; `None` when it is not `whsec_` + base64.
    pub fn from_stored(text: String) -> Option<Self> {
        let secret = WebhookSecret(text);
        secret.key().map(|_| secret)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The HMAC key: the base64-decoded part after the prefix.
    pub fn key(&self) -> Option<Vec<u8>> {
        STANDARD.decode(self.0.strip_prefix(SECRET_PREFIX)?).ok()
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

/// The event types a subscription receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventFilter {
    /// `["*"]`: every type, including types added later.
    All,
    /// These types, sorted, without repeats.
    Only(Vec<EventType>),
}

impl EventFilter {
    /// The filter of a request's `events`: `["*"]` alone, or known types.
    pub fn parse(names: &[String]) -> Result<Self, String> {
        if names.is_empty() {
            return Err("must name at least one event type, or [\"*\"] for all".into());
        }
        if names.iter().any(|name| name == "*") {
            return if names.len() == 1 { Ok(EventFilter::All) } else { Err("\"*\" must be alone".into()) };
        }
        let mut types = Vec::with_capacity(names.len());
        for name in names {
            let known = || EventType::ALL.map(EventType::as_str).join(", ");
            types.push(
                EventType::parse(name).ok_or_else(|| format!("unknown event type `{name}`; known: {}", known()))?,
            );
        }
        types.sort();
        types.dedup();
        Ok(EventFilter::Only(types))
    }

    pub fn matches(&self, event_type: EventType) -> bool {
        match self {
            EventFilter::All => true,
            EventFilter::Only(types) => types.contains(&event_type),
        }
    }

    pub fn names(&self) -> Vec<&'static str> {
        match self {
            EventFilter::All => vec!["*"],
            EventFilter::Only(types) => types.iter().map(|t| t.as_str()).collect(),
        }
    }
}

impl Serialize for EventFilter {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.names().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for EventFilter {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let names = Vec::<String>::deserialize(deserializer)?;
        EventFilter::parse(&names).map_err(serde::de::Error::custom)
    }
}

/// The secret a rotation replaced, still signing until `until`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviousSecret {
    pub secret: WebhookSecret,
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
}

/// One subscription, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// UUID v7: id order is creation order.
    pub id: Uuid,
    pub url: String,
    pub events: EventFilter,
    pub description: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub secret: WebhookSecret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_secret: Option<PreviousSecret>,
}

impl Webhook {
    /// Makes `secret` the current one; the one it replaces keeps signing
    /// beside it until `previous_until`.
    pub fn rotate(&mut self, secret: WebhookSecret, previous_until: OffsetDateTime) {
        let replaced = std::mem::replace(&mut self.secret, secret);
        self.previous_secret = Some(PreviousSecret { secret: replaced, until: previous_until });
    }

    /// The secrets a delivery at `now` is signed with: the current one,
    /// and the one it replaced while the overlap lasts.
    pub fn signing_secrets(&self, now: OffsetDateTime) -> Vec<&WebhookSecret> {
        let mut secrets = vec![&self.secret];
        if let Some(previous) = self.previous_secret.as_ref().filter(|previous| previous.until > now) {
            secrets.push(&previous.secret);
        }
        secrets
    }
}

/// A request's `description`: trimmed, at most [`MAX_DESCRIPTION`] characters.
pub fn parse_description(raw: Option<&str>) -> Result<String, String> {
    let description = raw.unwrap_or("").trim();
    if description.chars().count() > MAX_DESCRIPTION {
        return Err(format!("must be at most {MAX_DESCRIPTION} characters"));
    }
    if description.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(description.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_new_secret_is_whsec_and_a_32_byte_key() {
        let secret = WebhookSecret::generate();
        assert!(secret.as_str().starts_with("whsec_"));
        assert_eq!(secret.key().unwrap().len(), 32);
        assert_ne!(secret, WebhookSecret::generate());
        assert_eq!(format!("{secret:?}"), "WebhookSecret(..)");
        assert!(WebhookSecret::from_stored("whsec_!!".into()).is_none());
        assert!(WebhookSecret::from_stored("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()).is_none());
    }

    #[test]
    fn a_filter_is_all_alone_or_known_types() {
        assert_eq!(EventFilter::parse(&names(&["*"])).unwrap(), EventFilter::All);
        let filter = EventFilter::parse(&names(&["order.placed", "order.cancelled", "order.placed"])).unwrap();
        assert_eq!(filter.names(), vec!["order.placed", "order.cancelled"]);
        assert!(filter.matches(EventType::OrderPlaced) && !filter.matches(EventType::ProductCreated));
        assert!(EventFilter::parse(&names(&[])).is_err());
        assert!(EventFilter::parse(&names(&["*", "order.placed"])).unwrap_err().contains("alone"));
        assert!(EventFilter::parse(&names(&["order.shipped"])).unwrap_err().contains("order.shipped"));
        let json = serde_json::to_string(&EventFilter::All).unwrap();
        assert_eq!(serde_json::from_str::<EventFilter>(&json).unwrap(), EventFilter::All);
    }

    #[test]
    fn the_replaced_secret_signs_until_its_overlap_ends() {
        let now = OffsetDateTime::now_utc();
        let mut webhook = Webhook {
            id: Uuid::now_v7(),
            url: "https://hooks.example.com/shop".into(),
            events: EventFilter::All,
            description: String::new(),
            created_at: now,
            secret: WebhookSecret::generate(),
            previous_secret: None,
        };
        assert_eq!(webhook.signing_secrets(now).len(), 1);
        let first = webhook.secret.clone();
        webhook.rotate(WebhookSecret::generate(), now + time::Duration::hours(24));
        assert_eq!(webhook.signing_secrets(now).len(), 2);
        assert_eq!(webhook.signing_secrets(now)[1], &first);
        assert_eq!(webhook.signing_secrets(now + time::Duration::hours(25)).len(), 1);
    }

    #[test]
    fn descriptions_are_short_plain_text() {
        assert_eq!(parse_description(Some("  fulfilment  ")).unwrap(), "fulfilment");
        assert_eq!(parse_description(None).unwrap(), "");
        assert!(parse_description(Some(&"x".repeat(201))).is_err());
        assert!(parse_description(Some("a\u{0}b")).is_err());
    }
}
