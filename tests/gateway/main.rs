//! Gateway integration tests: real identity-svc, collector-svc and gateway on loopback ports.
