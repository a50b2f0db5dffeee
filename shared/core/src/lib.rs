//! raptr's repository core: what a repository is (its configuration), the
//! keys of its bucket, bundles' manifests, requests, reports, and the ingest
//! logic over the ports of `raptr-store`. No SDK and no filesystem here:
//! adapters are handed in.

pub mod change;
pub mod config;
pub mod folder;
pub mod import;
pub mod ingest;
pub mod inventory;
pub mod keys;
pub mod limits;
pub mod manifest;
pub mod plan;
pub mod progress;
pub mod publish;
pub mod repo;
pub mod report;
pub mod request;
pub mod retain;
pub mod signing;
pub mod snapshot;
pub mod time;

/// What serde_json says is wrong with a document, as one bounded line: its
/// messages quote the offending field name or string in full, and those come
/// from the input.
pub fn json_problem(e: &serde_json::Error) -> String {
    let full = e.to_string();
    // The position is reported separately by the callers.
    let message = full
        .rsplit_once(" at line ")
        .map_or(full.as_str(), |(m, _)| m);
    raptr_formats::quote::line(message).into_owned()
}
