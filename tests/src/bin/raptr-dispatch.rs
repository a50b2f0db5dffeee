//! `raptr-dispatch`: delivers an emulator's S3 events to raptr's ingest and
//! publish functions in-process (what Lambda's triggers do in AWS). The
//! endpoint and credentials come from the standard AWS environment
//! (`AWS_ENDPOINT_URL`, ...), as for the AWS CLI; `RAPTR_LEASE_SECONDS`
//! sets the publish lease and `RAPTR_PROGRESS_SECONDS` how often long
//! work reports progress, as for the function. With `RUST_LOG` set, the
//! functions' logs go to standard error.
//!
//!     raptr-dispatch                 # handle what is queued, publish, exit
//!     raptr-dispatch --watch         # keep doing so until interrupted
//!     raptr-dispatch --invoke '{"raptr": "verify"}'

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use raptr_e2e::{Dispatcher, Round, Target};

#[derive(Debug, Parser)]
#[command(
    name = "raptr-dispatch",
    about = "Hand an emulator's queued S3 events to raptr's ingest function, then run its publish function"
)]
struct Args {
    /// The primary bucket.
    #[arg(long, env = "RAPTR_BUCKET", default_value = "raptr-primary")]
    bucket: String,
    /// The DynamoDB table (lease, journal).
    #[arg(long, env = "RAPTR_TABLE", default_value = "raptr")]
    table: String,
    /// The SQS queue the bucket's events go to.
    #[arg(long, env = "RAPTR_QUEUE", default_value = "raptr-ingest")]
    queue: String,
    /// Keep polling the queue (Ctrl-C stops).
    #[arg(long, conflicts_with = "invoke")]
    watch: bool,
    /// Invoke the publish function with this payload instead, and print
    /// its answer.
    #[arg(long, value_name = "JSON")]
    invoke: Option<String>,
}

fn print(round: &Round) {
    for line in round.lines() {
        println!("{line}");
    }
}

async fn run(args: Args) -> Result<(), String> {
    let conf = raptr_aws::load_config().await;
    let target = Target {
        bucket: args.bucket,
        table: args.table,
        queue: args.queue,
    };
    let d = Dispatcher::connect(&conf, raptr_aws::path_style_from_env(), target)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(payload) = args.invoke {
        let payload =
            serde_json::from_str(&payload).map_err(|e| format!("--invoke: not JSON: {e}"))?;
        let answer = d.invoke(payload).await.map_err(|e| e.to_string())?;
        println!("{answer:#}");
        return Ok(());
    }
    loop {
        let round = d.round().await.map_err(|e| e.to_string())?;
        if !args.watch {
            print(&round);
            println!(
                "dispatched {} event message(s) of {}: {} file(s) handled, {} delivery(ies) failed and returned to the queue",
                round.messages,
                d.target().bucket,
                round.outcomes.len(),
                round.failed
            );
            return Ok(());
        }
        if round.messages > 0 {
            print(&round);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .without_time()
            .init();
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("raptr-dispatch: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("raptr-dispatch: {e}");
            ExitCode::FAILURE
        }
    }
}
