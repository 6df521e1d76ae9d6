/// collector-svc fixtures.
pub mod collector;

/// identity-svc fixtures.
pub mod identity;

/// gateway fixtures (identity-svc + collector-svc + gateway).
pub mod gateway;
