//! raptr's repository core: what a repository is (its configuration), the
//! keys of its bucket, bundles' manifests, requests, reports, and the ingest
//! logic over the ports of `raptr-store`. No SDK and no filesystem here:
//! adapters are handed in.

pub mod change;
pub mod config;
pub mod folder;
pub mod ingest;
pub mod keys;
pub mod manifest;
pub mod progress;
pub mod publish;
pub mod repo;
pub mod report;
pub mod request;
pub mod signing;
pub mod time;
