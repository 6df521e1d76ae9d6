//! Server-rendered pages.

use axum::Router;

use crate::state::AppState;

/// Page routes.
pub fn router() -> Router<AppState> {
    Router::new()
}
