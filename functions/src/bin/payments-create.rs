//! The `payments-create` Lambda function; its route is in `shop::routes::ROUTES`.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shop::lambda::run(env!("CARGO_BIN_NAME")).await
}
