//! What other ashgate services need to work with identity-svc: Phoenix-style configuration
//! parsing, logging and signals, and credential verification with a revocation-evicted cache.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

pub mod bearer;
pub mod env;
pub mod process;
