//! The fake server over HTTP: one test binary, a module per subject, sharing `common`.

mod common;

mod account;
mod auth;
mod dataset;
mod faults;
mod load;
mod paging;
mod rate_limit;
