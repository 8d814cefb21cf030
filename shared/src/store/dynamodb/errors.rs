//! The one place where DynamoDB failures become [`StoreError`]s.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;

use crate::store::StoreError;

/// Error codes that mean "try again later", not "your request is wrong".
const TRANSIENT_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "ThrottlingException",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionInProgressException",
];

/// Any operation's failure: unreachable or throttled -> `Unavailable`,
/// anything else -> `Internal`.
pub(super) fn classify<E>(err: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match &err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            StoreError::Unavailable(format!("dynamodb: {}", aws_sdk_dynamodb::error::DisplayErrorContext(&err)))
        }
        SdkError::ServiceError(service) if is_key_range_throttling(service.raw()) => {
            StoreError::Contended(format!("dynamodb: {}", service.err().code().unwrap_or("throttled")))
        }
        SdkError::ServiceError(service) if is_transient(service.err().code()) => {
            StoreError::Unavailable(format!("dynamodb: {}", service.err().code().unwrap_or("unknown")))
        }
        _ => StoreError::Internal(format!("dynamodb: {}", aws_sdk_dynamodb::error::DisplayErrorContext(&err))),
    }
}

/// Throttling of one partition key's range (a hot item or index
/// partition), as DynamoDB names it in the error's throttling reasons
/// (`TableWriteKeyRangeThroughputExceeded`, `IndexWrite...`): the rest of
/// the table is fine.
fn is_key_range_throttling(response: &HttpResponse) -> bool {
    response
        .body()
        .bytes()
        .is_some_and(|body| body.windows(KEY_RANGE_REASON.len()).any(|window| window == KEY_RANGE_REASON))
}

const KEY_RANGE_REASON: &[u8] = b"KeyRangeThroughputExceeded";

fn is_transient(code: Option<&str>) -> bool {
    code.is_some_and(|code| TRANSIENT_CODES.contains(&code))
}

/// A transaction's failure. When it was cancelled because the condition of
/// the item at position `i` failed, `on_condition(i)` names the domain error;
/// a cancellation for a concurrent transaction on the same items is
/// transient; everything else goes through [`classify`].
pub(super) fn transaction_conflict(
    err: SdkError<TransactWriteItemsError, HttpResponse>,
    on_condition: impl Fn(usize) -> StoreError,
) -> StoreError {
    if let SdkError::ServiceError(service) = &err
        && let TransactWriteItemsError::TransactionCanceledException(cancelled) = service.err()
    {
        let reasons = cancelled.cancellation_reasons();
        if let Some(index) = reasons.iter().position(|r| r.code() == Some("ConditionalCheckFailed")) {
            return on_condition(index);
        }
        // Other transactions on the same items, retried already
        // (`send_transaction`), or one item's partition throttled: that
        // key is busy, the store is not down.
        if reasons.iter().any(|r| matches!(r.code(), Some("TransactionConflict" | "ThrottlingError"))) {
            return StoreError::Contended("dynamodb: transaction conflict on a busy item".into());
        }
    }
    classify(err)
}

/// True when a transaction was cancelled only because another transaction
/// was working on the same items: worth retrying at once.
pub(super) fn is_transaction_conflict<R>(err: &SdkError<TransactWriteItemsError, R>) -> bool {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
            let reasons = cancelled.cancellation_reasons();
            reasons.iter().any(|r| r.code() == Some("TransactionConflict"))
                && !reasons.iter().any(|r| r.code() == Some("ConditionalCheckFailed"))
        }
        _ => false,
    }
}

/// Sends a transaction, retrying a few times with jitter while it only
/// conflicts with concurrent transactions on the same items (hot products
/// under load).
pub(super) async fn send_transaction(
    request: aws_sdk_dynamodb::operation::transact_write_items::builders::TransactWriteItemsFluentBuilder,
) -> Result<
    aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsOutput,
    SdkError<TransactWriteItemsError, aws_sdk_dynamodb::config::http::HttpResponse>,
> {
    const ATTEMPTS: u32 = 4;
    let mut attempt = 1;
    loop {
        match request.clone().send().await {
            Err(err) if attempt < ATTEMPTS && is_transaction_conflict(&err) => {
                let jitter = rand::random_range(0..20u64 * u64::from(attempt));
                tokio::time::sleep(std::time::Duration::from_millis(10 + jitter)).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}
