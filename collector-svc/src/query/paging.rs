//! Page sizes and the checks every read request shares.

use crate::error::Error;

/// Values one list filter may hold (a URL cannot carry many more anyway).
pub const MAX_FILTER_VALUES: usize = 1000;

/// A page size: 0 means 100; more than 1000 is refused.
pub fn page_limit(limit: u32) -> Result<u32, Error> {
    match limit {
        0 => Ok(100),
        1..=1000 => Ok(limit),
        _ => Err(Error::Invalid { field: "limit", reason: "must be between 1 and 1000" }),
    }
}

/// A page's first row id: 0 means "from the start"; negative is refused.
pub fn max_id(value: i64) -> Result<Option<i64>, Error> {
    match value {
        0 => Ok(None),
        v if v < 0 => Err(Error::Invalid { field: "max_id", reason: "must not be negative" }),
        v => Ok(Some(v)),
    }
}

/// A time bound: 0 means unbounded; negative is refused.
pub fn time_bound(value: i64, field: &'static str) -> Result<Option<i64>, Error> {
    match value {
        0 => Ok(None),
        v if v < 0 => Err(Error::Invalid { field, reason: "must not be negative" }),
        v => Ok(Some(v)),
    }
}

/// A list filter of at most [`MAX_FILTER_VALUES`] values.
pub fn values(list: Vec<String>, field: &'static str) -> Result<Vec<String>, Error> {
    if list.len() > MAX_FILTER_VALUES {
        return Err(Error::Invalid { field, reason: "holds more than 1000 values" });
    }
    Ok(list)
}

/// A list of names each in `known` (compared as sent: callers upper-case first).
pub fn known_values(list: Vec<String>, known: &[&str], field: &'static str) -> Result<Vec<String>, Error> {
    let list = values(list, field)?;
    if list.iter().any(|v| !known.contains(&v.as_str())) {
        return Err(Error::Invalid { field, reason: "holds a value that is not one of the known names" });
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_bounds() {
        assert_eq!(page_limit(0).unwrap(), 100);
        assert_eq!(page_limit(1000).unwrap(), 1000);
        assert_eq!(page_limit(1001).unwrap_err().to_string(), "Invalid limit: must be between 1 and 1000");
        assert_eq!(max_id(0).unwrap(), None);
        assert_eq!(max_id(-1).unwrap_err().to_string(), "Invalid max_id: must not be negative");
        assert_eq!(time_bound(5, "t").unwrap(), Some(5));
        assert!(known_values(vec!["LLM".into()], &["LLM"], "span_kinds").is_ok());
        assert_eq!(
            known_values(vec!["llm".into()], &["LLM"], "span_kinds").unwrap_err().to_string(),
            "Invalid span_kinds: holds a value that is not one of the known names"
        );
        assert!(values(vec![String::new(); 1001], "names").is_err());
    }
}
