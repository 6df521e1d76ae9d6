//! SQL built at run time with the backend's placeholder style, its arguments kept beside it so
//! text and binds cannot drift apart. Only fixed fragments are ever appended as text; every
//! value a caller sent is a bound argument.

use sqlx::any::AnyArguments;
use sqlx::{Any, AssertSqlSafe};

use super::Backend;

/// A value bound to a placeholder.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Arg {
    Int(i64),
    Real(f64),
    Text(String),
}

/// A statement under construction.
#[derive(Debug)]
pub(super) struct Sql {
    backend: Backend,
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    pub(super) fn new(backend: Backend, text: &str) -> Self {
        Self { backend, text: text.to_owned(), args: Vec::new() }
    }

    /// Appends fixed SQL text.
    pub(super) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `arg`.
    pub(super) fn arg(&mut self, arg: Arg) -> &mut Self {
        self.args.push(arg);
        match self.backend {
            Backend::Sqlite => self.text.push('?'),
            Backend::Postgres => {
                self.text.push('$');
                self.text.push_str(&self.args.len().to_string());
            }
        }
        self
    }

    /// Appends `(?, ?, …)`, one placeholder per value.
    pub(super) fn list(&mut self, values: &[String]) -> &mut Self {
        self.push("(");
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.arg(Arg::Text(value.clone()));
        }
        self.push(")")
    }

    /// The statement with its arguments bound.
    pub(super) fn query(self) -> sqlx::query::Query<'static, Any, AnyArguments> {
        let mut query = sqlx::query(AssertSqlSafe(self.text));
        for arg in self.args {
            query = match arg {
                Arg::Int(v) => query.bind(v),
                Arg::Real(v) => query.bind(v),
                Arg::Text(v) => query.bind(v),
            };
        }
        query
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_the_backend() {
        let mut sql = Sql::new(Backend::Postgres, "SELECT 1 WHERE a = ");
        sql.arg(Arg::Int(1)).push(" AND b IN ").list(&["x".into(), "y".into()]);
        assert_eq!(sql.text, "SELECT 1 WHERE a = $1 AND b IN ($2, $3)");
        let mut sql = Sql::new(Backend::Sqlite, "SELECT 1 WHERE a = ");
        sql.arg(Arg::Real(1.5)).push(" AND b IN ").list(&["x".into()]);
        assert_eq!(sql.text, "SELECT 1 WHERE a = ? AND b IN (?)");
        assert_eq!(sql.args, [Arg::Real(1.5), Arg::Text("x".into())]);
    }
}
