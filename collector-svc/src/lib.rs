//! collector-svc (in progress)
