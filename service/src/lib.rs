//! Plumbing shared by Custody's HTTP services (the log server and the
//! witness), written once so both behave the same.

pub mod client_address;
pub mod guard;
pub mod rate_limit;
