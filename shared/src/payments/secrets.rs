//! Where the Stripe keys come from in AWS: one Secrets Manager secret
//! (`STRIPE_SECRETS_ARN`) holding `{"secretKey": "sk_...", "webhookSecret":
//! "whsec_..."}`, read once per cold start. The template never puts the
//! keys in an environment variable, where anyone who may read the
//! function's configuration would see them.

use crate::app::StartupError;
use crate::config::Config;

/// Fills `config.stripe`'s keys from its secret, when one is named and a
/// key is missing. Keys given directly (a laptop, the tests) win.
pub async fn resolve(config: &mut Config) -> Result<(), StartupError> {
    let stripe = &config.stripe;
    let Some(arn) = stripe.secrets_arn.clone() else { return Ok(()) };
    if stripe.secret_key.is_some() && stripe.webhook_secret.is_some() {
        return Ok(());
    }
    let text = fetch(&arn).await.map_err(StartupError::PaymentSecrets)?;
    let keys = parse(&text).map_err(StartupError::PaymentSecrets)?;
    config.stripe.secret_key.get_or_insert(keys.secret_key);
    config.stripe.webhook_secret.get_or_insert(keys.webhook_secret);
    Ok(())
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct StripeKeys {
    secret_key: String,
    webhook_secret: String,
}

/// The secret's JSON; what is wrong with it, never its values.
fn parse(text: &str) -> Result<StripeKeys, String> {
    let keys: StripeKeys = serde_json::from_str(text)
        .map_err(|_| "the secret must be JSON {\"secretKey\": ..., \"webhookSecret\": ...}".to_owned())?;
    if !keys.webhook_secret.starts_with("whsec_") {
        return Err("the secret's webhookSecret must start with `whsec_`".into());
    }
    if keys.secret_key.trim().is_empty() {
        return Err("the secret's secretKey is empty".into());
    }
    Ok(keys)
}

#[cfg(feature = "secrets")]
async fn fetch(arn: &str) -> Result<String, String> {
    use aws_sdk_secretsmanager::config::BehaviorVersion;
    let (region, credentials) = crate::store::dynamodb::lambda_environment();
    let mut config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(crate::store::dynamodb::https_client())
        .region(region)
        .credentials_provider(credentials);
    config.set_endpoint_url(crate::store::dynamodb::endpoint_url("AWS_ENDPOINT_URL_SECRETS_MANAGER"));
    let client = aws_sdk_secretsmanager::Client::from_conf(config.build());
    let output = client.get_secret_value().secret_id(arn).send().await.map_err(|e| format!("{e:?}"))?;
    output.secret_string().map(str::to_owned).ok_or_else(|| "the secret has no string value".into())
}

#[cfg(not(feature = "secrets"))]
async fn fetch(_arn: &str) -> Result<String, String> {
    Err("this binary was built without Secrets Manager: set STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_holds_both_keys_as_json() {
        let keys = parse(r#"{"secretKey":"sk_test_1","webhookSecret":"whsec_2"}"#).unwrap();
        assert_eq!((keys.secret_key.as_str(), keys.webhook_secret.as_str()), ("sk_test_1", "whsec_2"));
        assert!(parse("sk_test_1").is_err());
        assert!(parse(r#"{"secretKey":"sk_test_1","webhookSecret":"nope"}"#).is_err());
        assert!(parse(r#"{"secretKey":" ","webhookSecret":"whsec_2"}"#).is_err());
    }
}
