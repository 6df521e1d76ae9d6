//! What other ashgate services need to work with identity-svc: Phoenix-style configuration
//! parsing and (to come) credential verification with a revocation-evicted cache.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

pub mod env;
