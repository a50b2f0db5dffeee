//! The ingest Lambda function. Environment: `RAPTR_BUCKET` (the primary
//! bucket), `RAPTR_TABLE` (the DynamoDB table, default `raptr`), and the
//! standard AWS variables. Logs are JSON lines (`RUST_LOG` filters them).

use lambda_runtime::{service_fn, LambdaEvent};
use raptr_ingest::Handler;
use serde_json::Value;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_current_span(false)
        .without_time()
        .init();
    let bucket = std::env::var("RAPTR_BUCKET")
        .map_err(|_| "RAPTR_BUCKET is not set: it names the repository's primary bucket")?;
    let (store, table) = raptr_aws::repository(&bucket).await;
    let handler = Handler {
        bucket,
        store: Arc::new(store),
        journal: Arc::new(table),
        keyrings: Some(raptr_aws::SecretReader(raptr_aws::load_config().await)),
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let handler = handler.clone();
        async move {
            handler
                .handle(event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}
