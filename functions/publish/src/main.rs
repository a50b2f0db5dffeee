//! The publish Lambda function. Environment: `RAPTR_BUCKET` (the primary
//! bucket), `RAPTR_TABLE` (the DynamoDB table, default `raptr`),
//! `RAPTR_LEASE_SECONDS`, `RAPTR_SWEEP_MIN_AGE_SECONDS`,
//! `RAPTR_PROGRESS_SECONDS`, `RAPTR_VERIFY_SLICE_SECONDS` and
//! `RAPTR_MIRROR_BUDGET_SECONDS` (optional), and the standard AWS variables. Logs
//! are JSON lines (`RUST_LOG` filters them).

use std::sync::Arc;

use lambda_runtime::{service_fn, LambdaEvent};
use raptr_publish::{
    lease_from_env, mirror_budget_from_env, progress_from_env, sweep_min_age_from_env,
    verify_slice_from_env, Aws, Handler,
};
use serde_json::Value;

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
    let lease = lease_from_env()?;
    let sweep_min_age = sweep_min_age_from_env()?;
    let progress_every = progress_from_env()?;
    let verify_slice = verify_slice_from_env()?;
    let mirror_budget = mirror_budget_from_env()?;
    let (store, table) = raptr_aws::repository(&bucket).await;
    let handler = Handler {
        bucket,
        store: Arc::new(store),
        table: Arc::new(table),
        aws: Aws {
            conf: raptr_aws::load_config().await,
            path_style: raptr_aws::path_style_from_env(),
        },
        owner: format!(
            "lambda:{}:{}",
            std::env::var("AWS_LAMBDA_LOG_STREAM_NAME").unwrap_or_else(|_| "local".into()),
            std::process::id()
        ),
        lease,
        sweep_min_age,
        progress_every,
        verify_slice,
        mirror_budget,
        keys: Default::default(),
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
