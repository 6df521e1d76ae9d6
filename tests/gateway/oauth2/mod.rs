//! OAuth2 / OIDC sign-in against a real OpenID Provider (npm `oidc-provider`, started by the
//! harness on loopback), driven at the HTTP level: cookies and redirects followed by hand.

mod failures;
mod rules;

pub use ashgate_testkit::oauth2::*;
