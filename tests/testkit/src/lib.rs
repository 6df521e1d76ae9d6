

/// collector-svc fixtures.
pub mod collector;

/// gateway fixtures (identity-svc + collector-svc + gateway).
pub mod gateway;
