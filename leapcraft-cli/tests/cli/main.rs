//! The `leapcraft` binary end to end, against `leapcraft-fake` or purpose-built servers: one
//! test binary, a module per subject, sharing `support`.

mod support;

mod basics;
mod ergonomics;
mod exits;
mod export;
mod follow;
mod logs;
mod mqtt;
mod profiles;
mod real_account;
mod safety;
mod serve;
