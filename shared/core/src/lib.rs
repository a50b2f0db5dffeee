//! raptr's repository core: what a repository is (its configuration) and,
//! as it lands, the ingest and publish logic over the ports of `raptr-store`.
//! No SDK and no filesystem here: adapters are handed in.

pub mod config;
