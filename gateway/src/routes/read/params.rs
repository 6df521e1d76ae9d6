//! Query parameters as FastAPI reads them for Phoenix's read routes: repeatable keys, and
//! typed values whose failures are reported all at once as FastAPI's 422
//! `{"detail": [{type, loc, msg, input}]}` (an `HTTPException`'s 422 is plain text instead,
//! see [`ReadError`]).

use axum::Json;
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::timestamp::parse_iso_nanos;

/// What a read route fails with.
#[derive(Debug)]
pub enum ReadError {
    /// Any gateway error (plain text, Phoenix's `HTTPException` texts).
    Api(ApiError),
    /// FastAPI's request validation failure (422, JSON).
    Validation(Vec<Value>),
}

impl From<ApiError> for ReadError {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

impl ReadError {
    /// One line for a page: the plain message, or the first validation failure.
    pub fn summary(&self) -> String {
        match self {
            Self::Api(error) => error.public_message().to_owned(),
            Self::Validation(detail) => detail
                .first()
                .map(|d| {
                    let field = d["loc"].get(1).and_then(Value::as_str).unwrap_or("a field");
                    format!("{field}: {}", d["msg"].as_str().unwrap_or("invalid"))
                })
                .unwrap_or_default(),
        }
    }
}

impl IntoResponse for ReadError {
    fn into_response(self) -> Response {
        match self {
            Self::Api(error) => error.into_response(),
            Self::Validation(detail) => {
                (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "detail": detail }))).into_response()
            }
        }
    }
}

/// Result of a read route.
pub type ReadResult<T> = Result<T, ReadError>;

/// The 422 text of an `HTTPException` (plain text).
pub fn unprocessable(message: impl Into<String>) -> ReadError {
    ReadError::Api(ApiError::Unprocessable(message.into()))
}

/// The raw query parameters, in order, keys repeatable.
#[derive(Debug, Default)]
pub struct QueryParams {
    pairs: Vec<(String, String)>,
    errors: Vec<Value>,
}

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ReadError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ReadError> {
        let query = parts.uri.query().unwrap_or_default();
        Ok(Self {
            pairs: url::form_urlencoded::parse(query.as_bytes()).into_owned().collect(),
            errors: Vec::new(),
        })
    }
}

impl QueryParams {
    /// The parameters of `query`, leaving out empty values (what an HTML form sends for a
    /// field left blank).
    pub fn from_form_query(query: &str) -> Self {
        let pairs = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .filter(|(_, v)| !v.trim().is_empty())
            .collect();
        Self { pairs, errors: Vec::new() }
    }

    /// Every (name, value) pair, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The last value of `name` (Starlette's rule for a single-valued parameter).
    pub fn one(&self, name: &str) -> Option<&str> {
        self.pairs.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect()
    }

    fn fail(&mut self, kind: &str, name: &str, msg: &str, input: &str) {
        self.errors.push(json!({"type": kind, "loc": ["query", name], "msg": msg, "input": input}));
    }

    /// An integer in `min..=max` (FastAPI `gt`/`le` checks), or `default`.
    pub fn int(&mut self, name: &str, default: i64, min: i64, max: Option<i64>) -> i64 {
        let Some(raw) = self.one(name).map(str::to_owned) else { return default };
        match raw.trim().parse::<i64>() {
            Err(_) => self.fail(
                "int_parsing",
                name,
                "Input should be a valid integer, unable to parse string as an integer",
                &raw,
            ),
            Ok(n) if n < min => {
                let msg = format!("Input should be greater than {}", min - 1);
                self.fail("greater_than", name, &msg, &raw);
            }
            Ok(n) if max.is_some_and(|max| n > max) => {
                let msg = format!("Input should be less than or equal to {}", max.unwrap_or_default());
                self.fail("less_than_equal", name, &msg, &raw);
            }
            Ok(n) => return n,
        }
        default
    }

    /// A non-negative number, if given.
    pub fn non_negative(&mut self, name: &str) -> Option<f64> {
        let raw = self.one(name)?.to_owned();
        match raw.trim().parse::<f64>() {
            Ok(n) if n.is_finite() && n >= 0.0 => Some(n),
            Ok(n) if n.is_finite() => {
                self.fail("greater_than_equal", name, "Input should be greater than or equal to 0", &raw);
                None
            }
            _ => {
                self.fail(
                    "float_parsing",
                    name,
                    "Input should be a valid number, unable to parse string as a number",
                    &raw,
                );
                None
            }
        }
    }

    /// A boolean as pydantic reads one (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`, ...).
    pub fn boolean(&mut self, name: &str) -> Option<bool> {
        let raw = self.one(name)?.to_owned();
        match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" | "t" | "y" => Some(true),
            "false" | "0" | "no" | "off" | "f" | "n" => Some(false),
            _ => {
                self.fail(
                    "bool_parsing",
                    name,
                    "Input should be a valid boolean, unable to interpret input",
                    &raw,
                );
                None
            }
        }
    }

    /// A datetime (ISO 8601; a naive one is UTC) in Unix nanoseconds, if given.
    pub fn datetime(&mut self, name: &str) -> Option<i64> {
        let raw = self.one(name)?.to_owned();
        let parsed = parse_iso_nanos(&raw).filter(|n| *n > 0);
        if parsed.is_none() {
            self.fail("datetime_parsing", name, "Input should be a valid datetime", &raw);
        }
        parsed
    }

    /// One of `allowed`, or `default`.
    pub fn literal(&mut self, name: &str, allowed: &[&'static str], default: &'static str) -> &'static str {
        let Some(raw) = self.one(name).map(str::to_owned) else { return default };
        if let Some(value) = allowed.iter().find(|a| **a == raw) {
            return value;
        }
        let expected = allowed.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(" or ");
        self.fail("literal_error", name, &format!("Input should be {expected}"), &raw);
        default
    }

    /// The 422 for every parameter that failed, if any did.
    pub fn finish(&mut self) -> ReadResult<()> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ReadError::Validation(std::mem::take(&mut self.errors)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(query: &str) -> QueryParams {
        QueryParams {
            pairs: url::form_urlencoded::parse(query.as_bytes()).into_owned().collect(),
            errors: Vec::new(),
        }
    }

    #[test]
    fn fastapi_validation() {
        let mut p = params("limit=0&name=a&name=b&x=1&x=2&flag=yes");
        assert_eq!(p.all("name"), ["a", "b"]);
        assert_eq!(p.one("x"), Some("2"));
        assert_eq!(p.boolean("flag"), Some(true));
        p.int("limit", 100, 1, Some(1000));
        let Err(ReadError::Validation(detail)) = p.finish() else { panic!("expected a 422") };
        assert_eq!(detail[0]["msg"], "Input should be greater than 0");
        assert_eq!(detail[0]["loc"], json!(["query", "limit"]));
        let mut p = params("limit=1001&sort=x");
        p.int("limit", 100, 1, Some(1000));
        p.literal("sort", &["start_time", "latency_ms"], "start_time");
        let Err(ReadError::Validation(detail)) = p.finish() else { panic!("expected a 422") };
        assert_eq!(detail[0]["msg"], "Input should be less than or equal to 1000");
        assert_eq!(detail[1]["msg"], "Input should be 'start_time' or 'latency_ms'");
    }
}
