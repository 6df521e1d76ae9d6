"""schemathesis hooks for scripts/api-fuzz: every 4xx must carry a message."""

import schemathesis


@schemathesis.check
def client_error_has_a_message(ctx, response, case):
    """A 4xx answer explains itself: a non-empty body (Phoenix's plain-text detail)."""
    if 400 <= response.status_code < 500 and not response.content.strip():
        raise AssertionError(f"{response.status_code} without a message")
    return None
