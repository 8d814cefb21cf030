//! `shop-local admin`: the operator's commands, run with the operator's own
//! credentials against the store itself, never over the public API.
//!
//! ```text
//! shop-local admin grant EMAIL     make the user with EMAIL an admin
//! shop-local admin revoke EMAIL    make them a customer again
//! shop-local admin cache [--name NAME | --stack STACK]
//!                                  describe the deployment's ElastiCache
//!                                  Serverless cache (DescribeServerlessCaches)
//! ```
//!
//! `grant` and `revoke` read the same configuration as the server (`STORE`,
//! `DATA_DIR`, `TABLE_NAME`, `AWS_ENDPOINT_URL_DYNAMODB`); against AWS they
//! use the operator's AWS credentials and `TABLE_NAME` (the stack's
//! `TableName` output). This is the only way to the first admin of a
//! deployed stack, where registration never makes one. The embedded store
//! is one process's file: stop `shop-local` on that `DATA_DIR` first.

use aws_config::BehaviorVersion;
use aws_sdk_elasticache::types::ServerlessCache;
use shop::Config;
use shop::domain::{Email, Role};
use shop::store::{self, StoreError};
use time::OffsetDateTime;

const USAGE: &str = "usage: shop-local admin grant EMAIL | revoke EMAIL | cache [--name NAME | --stack STACK]";

/// Runs `shop-local admin <args>`; what to print on success.
pub async fn run(config: &Config, args: &[String]) -> Result<String, String> {
    match args {
        [verb, email] if verb == "grant" => set_role(config, email, Role::Admin).await,
        [verb, email] if verb == "revoke" => set_role(config, email, Role::Customer).await,
        [verb, rest @ ..] if verb == "cache" => {
            let name = cache_name(rest)?;
            let sdk = aws_config::defaults(BehaviorVersion::latest())
                .http_client(shop::store::dynamodb::https_client())
                .load()
                .await;
            describe_caches(&aws_sdk_elasticache::Client::new(&sdk), name.as_deref()).await
        }
        _ => Err(USAGE.into()),
    }
}

async fn set_role(config: &Config, email: &str, role: Role) -> Result<String, String> {
    let email = Email::parse(email).map_err(|e| format!("`{email}` {e}"))?;
    let store = store::connect(config).await.map_err(|err| store_error(config, err))?;
    let user = store
        .user_by_email(&email)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no user has the email {email}: register it first, then run this again"))?;
    if user.role == role {
        return Ok(format!("{email} is already {} (nothing changed)", role.as_str()));
    }
    store.change_user_access(&user, role, user.status, OffsetDateTime::now_utc()).await.map_err(|err| match err {
        StoreError::LastAdmin => format!("{email} is the last active admin: grant another admin first"),
        StoreError::UserChanged => "the user changed meanwhile: run the command again".into(),
        other => other.to_string(),
    })?;
    let operator = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    tracing::info!(
        user_id = %user.id,
        by = "operator",
        operator = %operator,
        role_from = user.role.as_str(),
        role_to = role.as_str(),
        event = "user_access_changed",
        "user role changed by the operator"
    );
    let mut message = format!("{email} is now {}", role.as_str());
    if user.status != shop::domain::UserStatus::Active {
        message.push_str(" (the account is disabled: enable it through PUT /api/users/{id}/status)");
    }
    Ok(message)
}

/// Why the store would not open, in the operator's terms: the embedded
/// store is one process's file.
pub fn store_error(config: &Config, err: StoreError) -> String {
    match err {
        StoreError::Internal(cause) if cause.contains("already open") || cause.contains("lock") => format!(
            "cannot open the embedded store in {}: is shop-local running on it? Stop it first ({cause})",
            config.data_dir.display()
        ),
        other => format!("cannot open the store: {other}"),
    }
}

/// `--name NAME`, `--stack STACK` (the template names the cache
/// `<stack>-cache`), or neither: every serverless cache of the region.
fn cache_name(args: &[String]) -> Result<Option<String>, String> {
    match args {
        [] => Ok(None),
        [flag, name] if flag == "--name" => Ok(Some(name.clone())),
        [flag, stack] if flag == "--stack" => Ok(Some(format!("{stack}-cache"))),
        _ => Err(USAGE.into()),
    }
}

/// `DescribeServerlessCaches`, one block of lines per cache.
pub async fn describe_caches(client: &aws_sdk_elasticache::Client, name: Option<&str>) -> Result<String, String> {
    let output =
        client.describe_serverless_caches().set_serverless_cache_name(name.map(str::to_owned)).send().await.map_err(
            |err| format!("DescribeServerlessCaches failed: {}", aws_sdk_elasticache::error::DisplayErrorContext(&err)),
        )?;
    let caches = output.serverless_caches();
    if caches.is_empty() {
        return Ok("no serverless cache found".into());
    }
    Ok(caches.iter().map(describe).collect::<Vec<_>>().join("\n\n"))
}

fn describe(cache: &ServerlessCache) -> String {
    let or_dash = |value: Option<&str>| value.unwrap_or("-").to_owned();
    let endpoint = |endpoint: Option<&aws_sdk_elasticache::types::Endpoint>| match endpoint {
        Some(endpoint) => {
            format!("{}:{}", or_dash(endpoint.address()), endpoint.port().map_or("-".into(), |p| p.to_string()))
        }
        None => "-".into(),
    };
    let limits = cache.cache_usage_limits();
    let storage = limits.and_then(|l| l.data_storage()).map_or("-".into(), |storage| {
        let unit = storage.unit().map_or("", |unit| unit.as_str());
        format!("max {} {unit}", storage.maximum().map_or("-".into(), |m| m.to_string()))
    });
    let ecpu = limits
        .and_then(|l| l.ecpu_per_second())
        .and_then(|ecpu| ecpu.maximum())
        .map_or("-".into(), |max| format!("max {max}/s"));
    [
        format!("cache:           {}", or_dash(cache.serverless_cache_name())),
        format!("status:          {}", or_dash(cache.status())),
        format!("engine:          {} {}", or_dash(cache.engine()), or_dash(cache.full_engine_version())),
        format!("endpoint:        {}", endpoint(cache.endpoint())),
        format!("reader endpoint: {}", endpoint(cache.reader_endpoint())),
        format!("data storage:    {storage}"),
        format!("ECPU:            {ecpu}"),
        format!(
            "snapshots:       kept {} days, daily at {}",
            cache.snapshot_retention_limit().map_or("-".into(), |days| days.to_string()),
            or_dash(cache.daily_snapshot_time())
        ),
        format!("arn:             {}", or_dash(cache.arn())),
    ]
    .join("\n")
}

#[cfg(test)]
mod tests {
    use aws_sdk_elasticache::config::{BehaviorVersion, Credentials, Region};
    use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
    use aws_smithy_types::body::SdkBody;

    use super::*;

    /// What ElastiCache answers (its query protocol's XML), trimmed to the
    /// fields the command shows.
    const ANSWER: &str = r#"<DescribeServerlessCachesResponse xmlns="http://elasticache.amazonaws.com/doc/2015-02-02/">
  <DescribeServerlessCachesResult>
    <ServerlessCaches>
      <member>
        <ServerlessCacheName>shop-prod-cache</ServerlessCacheName>
        <Status>available</Status>
        <Engine>valkey</Engine>
        <MajorEngineVersion>8</MajorEngineVersion>
        <FullEngineVersion>8.0</FullEngineVersion>
        <CacheUsageLimits>
          <DataStorage><Maximum>5</Maximum><Unit>GB</Unit></DataStorage>
          <ECPUPerSecond><Maximum>20000</Maximum></ECPUPerSecond>
        </CacheUsageLimits>
        <Endpoint><Address>shop-prod-cache-abc.serverless.use1.cache.amazonaws.com</Address><Port>6379</Port></Endpoint>
        <ReaderEndpoint><Address>shop-prod-cache-abc.serverless.use1.cache.amazonaws.com</Address><Port>6380</Port></ReaderEndpoint>
        <ARN>arn:aws:elasticache:us-east-1:123456789012:serverlesscache:shop-prod-cache</ARN>
        <SnapshotRetentionLimit>1</SnapshotRetentionLimit>
        <DailySnapshotTime>04:00</DailySnapshotTime>
      </member>
    </ServerlessCaches>
  </DescribeServerlessCachesResult>
  <ResponseMetadata><RequestId>7f5c8d3e-0000-4000-8000-000000000000</RequestId></ResponseMetadata>
</DescribeServerlessCachesResponse>"#;

    fn client_answering(status: u16, body: &'static str) -> (aws_sdk_elasticache::Client, StaticReplayClient) {
        let request = http::Request::builder()
            .method("POST")
            .uri("https://elasticache.us-east-1.amazonaws.com/")
            .body(SdkBody::from(
                "Action=DescribeServerlessCaches&Version=2015-02-02&ServerlessCacheName=shop-prod-cache",
            ))
            .unwrap();
        let response = http::Response::builder().status(status).body(SdkBody::from(body)).unwrap();
        let replay = StaticReplayClient::new(vec![ReplayEvent::new(request, response)]);
        let config = aws_sdk_elasticache::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("operator", "secret", None, None, "test"))
            .http_client(replay.clone())
            .build();
        (aws_sdk_elasticache::Client::from_conf(config), replay)
    }

    #[tokio::test]
    async fn the_cache_is_described_from_describe_serverless_caches() {
        let (client, replay) = client_answering(200, ANSWER);
        let report = describe_caches(&client, Some("shop-prod-cache")).await.unwrap();
        replay.assert_requests_match(&[
            "x-amz-date",
            "content-length",
            "content-type",
            "amz-sdk-invocation-id",
            "amz-sdk-request",
        ]);
        for expected in [
            "cache:           shop-prod-cache",
            "status:          available",
            "engine:          valkey 8.0",
            "endpoint:        shop-prod-cache-abc.serverless.use1.cache.amazonaws.com:6379",
            "reader endpoint: shop-prod-cache-abc.serverless.use1.cache.amazonaws.com:6380",
            "data storage:    max 5 GB",
            "ECPU:            max 20000/s",
            "snapshots:       kept 1 days, daily at 04:00",
        ] {
            assert!(report.contains(expected), "missing `{expected}` in:\n{report}");
        }
    }

    #[tokio::test]
    async fn an_unknown_cache_is_an_error_that_names_the_operation() {
        const NOT_FOUND: &str = r#"<ErrorResponse xmlns="http://elasticache.amazonaws.com/doc/2015-02-02/">
  <Error><Type>Sender</Type><Code>ServerlessCacheNotFoundFault</Code><Message>Serverless cache shop-prod-cache not found.</Message></Error>
  <RequestId>7f5c8d3e-0000-4000-8000-000000000001</RequestId>
</ErrorResponse>"#;
        let (client, _) = client_answering(404, NOT_FOUND);
        let err = describe_caches(&client, Some("shop-prod-cache")).await.unwrap_err();
        assert!(err.starts_with("DescribeServerlessCaches failed"), "{err}");
        assert!(err.contains("not found"), "{err}");
    }

    #[test]
    fn the_cache_name_comes_from_a_flag_or_the_stack_name() {
        let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(cache_name(&args(&[])), Ok(None));
        assert_eq!(cache_name(&args(&["--name", "mine"])), Ok(Some("mine".into())));
        assert_eq!(cache_name(&args(&["--stack", "shop-prod"])), Ok(Some("shop-prod-cache".into())));
        assert!(cache_name(&args(&["--bogus"])).is_err());
    }
}
