

/// collector-svc fixtures.
pub mod collector;
