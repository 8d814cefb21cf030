//! The `search-index` Lambda function; what starts it is in `shop::workers::WORKERS`.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shop::lambda::run_worker(env!("CARGO_BIN_NAME")).await
}
