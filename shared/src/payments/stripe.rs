//! A thin client of Stripe's API: form-encoded requests for the few calls
//! the shop makes, the few response fields it reads.
//!
//! Every call is bounded by the request's deadline (and its own timeout)
//! and passes Stripe's circuit breaker, as the store's calls do: a Stripe
//! that is down or slow costs a request at most its timeout, and after a
//! few failures none at all until the cool-down ends.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::domain::payment::{IntentFacts, IntentState};
use crate::resilience::CircuitBreaker;
use crate::resilience::deadline::bounded;

/// Why a Stripe call failed.
#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    /// The card was declined (HTTP 402): the intent stays, failed.
    #[error("card declined: {0}")]
    Declined(String),
    /// Stripe refused the request (4xx): in this state, with these fields.
    #[error("stripe refused the request ({status}): {message}")]
    Refused { status: u16, code: Option<String>, message: String },
    /// Stripe could not be reached, answered 5xx, or was too slow.
    #[error("stripe unavailable: {0}")]
    Unavailable(String),
    /// Stripe's breaker is open: no call was made.
    #[error("stripe unavailable: circuit breaker open")]
    BreakerOpen(Duration),
}

impl StripeError {
    /// Worth trying again later (a 503 to a client, a retry to a consumer).
    pub fn is_transient(&self) -> bool {
        matches!(self, StripeError::Unavailable(_) | StripeError::BreakerOpen(_))
    }
}

/// A PaymentIntent, with the fields the shop reads.
#[derive(Clone, Debug, Deserialize)]
pub struct PaymentIntent {
    pub id: String,
    pub status: String,
    pub amount: u64,
    pub currency: String,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub last_payment_error: Option<serde_json::Value>,
    #[serde(default)]
    pub metadata: std::collections::HashMap<String, String>,
}

impl PaymentIntent {
    /// The order the shop made it for (`metadata[order_id]`).
    pub fn order_id(&self) -> Option<&str> {
        self.metadata.get("order_id").map(String::as_str)
    }

    /// What the shop's rules need of it; `None` for a status it does not know.
    pub fn facts(&self) -> Option<IntentFacts> {
        let has_error = self.last_payment_error.as_ref().is_some_and(|error| !error.is_null());
        Some(IntentFacts {
            id: self.id.clone(),
            state: IntentState::from_stripe(&self.status, has_error)?,
            amount_minor: self.amount,
            currency: self.currency.to_ascii_lowercase(),
        })
    }
}

#[derive(Deserialize)]
struct Refund {
    amount: u64,
    status: String,
}

#[derive(Deserialize)]
struct RefundList {
    data: Vec<Refund>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    code: Option<String>,
}

/// The longest one Stripe call may take, within the request's deadline.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(2);

pub struct StripeClient {
    http: reqwest::Client,
    base: String,
    secret_key: String,
    breaker: Arc<CircuitBreaker>,
}

impl StripeClient {
    pub fn new(base: &str, secret_key: &str, breaker: Arc<CircuitBreaker>) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(2))
            .timeout(CALL_TIMEOUT)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(StripeClient {
            http,
            base: base.trim_end_matches('/').to_owned(),
            secret_key: secret_key.to_owned(),
            breaker,
        })
    }

    pub fn breaker(&self) -> &Arc<CircuitBreaker> {
        &self.breaker
    }

    /// Creates the order's PaymentIntent, confirmed at once when a payment
    /// method is given. `idempotency_key` makes a retry return the same
    /// intent on Stripe (correctness never depends on it).
    pub async fn create_intent(
        &self,
        order_id: &str,
        amount_minor: u64,
        currency: &str,
        payment_method: Option<&str>,
        idempotency_key: &str,
    ) -> Result<PaymentIntent, StripeError> {
        let amount = amount_minor.to_string();
        let mut form = vec![
            ("amount", amount.as_str()),
            ("currency", currency),
            ("metadata[order_id]", order_id),
            ("payment_method_types[]", "card"),
        ];
        if let Some(method) = payment_method {
            form.push(("payment_method", method));
        }
        self.call(reqwest::Method::POST, "/v1/payment_intents", &form, Some(idempotency_key)).await
    }

    /// Sets the payment method of an intent that waits for one (before
    /// confirming it: not every Stripe server takes it on the confirm).
    pub async fn set_payment_method(&self, id: &str, payment_method: &str) -> Result<PaymentIntent, StripeError> {
        let form = [("payment_method", payment_method)];
        self.call(reqwest::Method::POST, &format!("/v1/payment_intents/{}", path(id)?), &form, None).await
    }

    /// Confirms an intent whose payment method is set; a decline is
    /// [`StripeError::Declined`] (the intent then shows the failure).
    pub async fn confirm_intent(&self, id: &str) -> Result<PaymentIntent, StripeError> {
        self.call(reqwest::Method::POST, &format!("/v1/payment_intents/{}/confirm", path(id)?), &[], None).await
    }

    pub async fn retrieve_intent(&self, id: &str) -> Result<PaymentIntent, StripeError> {
        self.call(reqwest::Method::GET, &format!("/v1/payment_intents/{}", path(id)?), &[], None).await
    }

    /// Cancels an intent that has not succeeded; Stripe refuses (4xx) one
    /// that succeeded or was cancelled already.
    pub async fn cancel_intent(&self, id: &str) -> Result<PaymentIntent, StripeError> {
        self.call(reqwest::Method::POST, &format!("/v1/payment_intents/{}/cancel", path(id)?), &[], None).await
    }

    /// Refunds `amount_minor` of the intent's payment.
    pub async fn refund(&self, intent_id: &str, amount_minor: u64, idempotency_key: &str) -> Result<(), StripeError> {
        let amount = amount_minor.to_string();
        let form = [("payment_intent", intent_id), ("amount", amount.as_str())];
        let _: serde_json::Value =
            self.call(reqwest::Method::POST, "/v1/refunds", &form, Some(idempotency_key)).await?;
        Ok(())
    }

    /// What was refunded of the intent's payment so far (refunds that
    /// succeeded or are on their way).
    pub async fn refunded(&self, intent_id: &str) -> Result<u64, StripeError> {
        let url = format!("/v1/refunds?payment_intent={}&limit=100", path(intent_id)?);
        let list: RefundList = self.call(reqwest::Method::GET, &url, &[], None).await?;
        Ok(list.data.iter().filter(|r| matches!(r.status.as_str(), "succeeded" | "pending")).map(|r| r.amount).sum())
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        form: &[(&str, &str)],
        idempotency_key: Option<&str>,
    ) -> Result<T, StripeError> {
        let permit = self.breaker.admit().map_err(|open| StripeError::BreakerOpen(open.retry_after))?;
        let mut request =
            self.http.request(method.clone(), format!("{}{path}", self.base)).bearer_auth(&self.secret_key);
        if method == reqwest::Method::POST {
            let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
            request = request.header("content-type", "application/x-www-form-urlencoded").body(body);
        }
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        let answered = bounded(Some(CALL_TIMEOUT), async {
            let response = request.send().await?;
            let status = response.status();
            Ok::<_, reqwest::Error>((status, response.bytes().await?))
        })
        .await;
        let (status, body) = match answered {
            Err(_) => {
                permit.failed();
                return Err(StripeError::Unavailable("no answer within the deadline".into()));
            }
            Ok(Err(err)) => {
                permit.failed();
                return Err(StripeError::Unavailable(err.to_string()));
            }
            Ok(Ok(answer)) => answer,
        };
        if status.is_server_error() || status.as_u16() == 429 {
            permit.failed();
            return Err(StripeError::Unavailable(format!("stripe answered {status}")));
        }
        permit.succeeded();
        if !status.is_success() {
            let detail = serde_json::from_slice::<ErrorBody>(&body).ok().map(|b| b.error);
            let message = detail.as_ref().and_then(|d| d.message.clone()).unwrap_or_else(|| status.to_string());
            return Err(match status.as_u16() {
                402 => StripeError::Declined(message),
                code => StripeError::Refused { status: code, code: detail.and_then(|d| d.code), message },
            });
        }
        serde_json::from_slice(&body).map_err(|e| StripeError::Unavailable(format!("unreadable answer: {e}")))
    }
}

/// Whether `id` has the shape of Stripe's ids: 1 to 255 of `[A-Za-z0-9_]`.
pub fn is_id(id: &str) -> bool {
    (1..=255).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// An id as one path segment; anything else (from a webhook body, say)
/// never reaches a URL.
fn path(id: &str) -> Result<&str, StripeError> {
    if is_id(id) {
        Ok(id)
    } else {
        Err(StripeError::Refused { status: 400, code: None, message: "not a Stripe id".into() })
    }
}
