//! Integration tests of the `raptr` binary, judged by Debian's own tools:
//! fixtures are built with dpkg-deb and dpkg-source at test time or fetched
//! from Debian by `scripts/fetch-fixtures.sh` (run by `make test`), and index
//! stanzas are compared with apt-ftparchive's output for the same files.

mod bounded;
mod check;
mod fixtures;
mod ftparchive;
mod hostile;
mod import;
mod keys;
mod operator;
mod publish;
mod repo;
mod s3;
mod snapshots;
