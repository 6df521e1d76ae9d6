//! The read path: projects and spans, paged by row id.

use sqlx::{AssertSqlSafe, Row as _, any::AnyRow};

use super::{Backend, Store, unavailable};
use crate::error::Error;

/// A project row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredProject {
    /// Row id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Creation time, Unix nanoseconds.
    pub created_at_unix_nano: i64,
}

/// One page of projects, in id order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectPage {
    /// The projects.
    pub projects: Vec<StoredProject>,
    /// Id to continue after, when there are more.
    pub next_after_id: Option<i64>,
}

/// Which spans of a project to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpanFilter {
    /// The project's row id.
    pub project_id: i64,
    /// Spans starting at or after this time.
    pub start_time_min: Option<i64>,
    /// Spans starting before this time.
    pub start_time_max: Option<i64>,
    /// Only this trace (lower-case hex).
    pub trace_id: Option<String>,
    /// Only spans with a smaller row id (the paging cursor; pages go newest first).
    pub before_id: Option<i64>,
    /// Page size.
    pub limit: u32,
}

/// A stored span as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct StoredSpan {
    pub id: i64,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub name: String,
    pub kind: String,
    pub start_time_unix_nano: i64,
    pub end_time_unix_nano: i64,
    pub status_code: String,
    pub status_message: String,
    pub attributes_json: String,
    pub events_json: String,
    pub links_json: String,
    pub resource_json: String,
    pub ingested_by_user_id: i64,
    pub ingested_by_kind: String,
}

/// One page of spans, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanPage {
    /// The spans.
    pub spans: Vec<StoredSpan>,
    /// Id to continue before, when there are more.
    pub next_before_id: Option<i64>,
}

/// Builds SQL with the backend's placeholder style.
struct Sql {
    backend: Backend,
    text: String,
    params: usize,
}

impl Sql {
    fn new(backend: Backend, text: &str) -> Self {
        Self { backend, text: text.to_owned(), params: 0 }
    }

    /// Appends `fragment`, replacing its one `?` with the next placeholder.
    fn push(&mut self, fragment: &str) -> &mut Self {
        self.params += 1;
        match self.backend {
            Backend::Sqlite => self.text.push_str(fragment),
            Backend::Postgres => self.text.push_str(&fragment.replace('?', &format!("${}", self.params))),
        }
        self
    }
}

fn project_from(row: &AnyRow) -> Result<StoredProject, sqlx::Error> {
    Ok(StoredProject {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        description: row.try_get(2)?,
        created_at_unix_nano: row.try_get(3)?,
    })
}

fn span_from(row: &AnyRow) -> Result<StoredSpan, sqlx::Error> {
    Ok(StoredSpan {
        id: row.try_get(0)?,
        trace_id: row.try_get(1)?,
        span_id: row.try_get(2)?,
        parent_span_id: row.try_get(3)?,
        name: row.try_get(4)?,
        kind: row.try_get(5)?,
        start_time_unix_nano: row.try_get(6)?,
        end_time_unix_nano: row.try_get(7)?,
        status_code: row.try_get(8)?,
        status_message: row.try_get(9)?,
        attributes_json: row.try_get(10)?,
        events_json: row.try_get(11)?,
        links_json: row.try_get(12)?,
        resource_json: row.try_get(13)?,
        ingested_by_user_id: row.try_get(14)?,
        ingested_by_kind: row.try_get(15)?,
    })
}

const PROJECT_COLUMNS: &str = "SELECT id, name, description, created_at FROM projects";

impl Store {
    /// Projects with id greater than `after_id`, at most `limit`.
    pub async fn list_projects(&self, after_id: i64, limit: u32) -> Result<ProjectPage, Error> {
        let mut sql = Sql::new(self.backend, PROJECT_COLUMNS);
        sql.push(" WHERE id > ?").push(" ORDER BY id LIMIT ?");
        let rows = sqlx::query(AssertSqlSafe(sql.text))
            .bind(after_id)
            .bind(i64::from(limit) + 1)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable("list projects"))?;
        let mut projects = rows
            .iter()
            .map(project_from)
            .collect::<Result<Vec<_>, _>>()
            .map_err(unavailable("read project"))?;
        let more = projects.len() > limit as usize;
        projects.truncate(limit as usize);
        let next_after_id = if more { projects.last().map(|p| p.id) } else { None };
        Ok(ProjectPage { projects, next_after_id })
    }

    /// The project with this name, else (when `identifier` is a number) with this id.
    pub async fn find_project(&self, identifier: &str) -> Result<Option<StoredProject>, Error> {
        let mut sql = Sql::new(self.backend, PROJECT_COLUMNS);
        sql.push(" WHERE name = ?");
        let row = sqlx::query(AssertSqlSafe(sql.text))
            .bind(identifier)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable("find project"))?;
        let row = match (row, identifier.parse::<i64>()) {
            (Some(row), _) => Some(row),
            (None, Ok(id)) => {
                let mut sql = Sql::new(self.backend, PROJECT_COLUMNS);
                sql.push(" WHERE id = ?");
                sqlx::query(AssertSqlSafe(sql.text))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(unavailable("find project"))?
            }
            (None, Err(_)) => None,
        };
        row.as_ref().map(project_from).transpose().map_err(unavailable("read project"))
    }

    /// Spans of one project matching `filter`, newest first.
    pub async fn query_spans(&self, filter: &SpanFilter) -> Result<SpanPage, Error> {
        let mut sql = Sql::new(
            self.backend,
            "SELECT id, trace_id, span_id, parent_span_id, name, kind, start_time, end_time, status_code, \
             status_message, attributes, events, links, resource, ingested_by_user_id, ingested_by_kind \
             FROM spans",
        );
        sql.push(" WHERE project_id = ?");
        if filter.start_time_min.is_some() {
            sql.push(" AND start_time >= ?");
        }
        if filter.start_time_max.is_some() {
            sql.push(" AND start_time < ?");
        }
        if filter.trace_id.is_some() {
            sql.push(" AND trace_id = ?");
        }
        if filter.before_id.is_some() {
            sql.push(" AND id < ?");
        }
        sql.push(" ORDER BY id DESC LIMIT ?");
        let mut query = sqlx::query(AssertSqlSafe(sql.text)).bind(filter.project_id);
        if let Some(t) = filter.start_time_min {
            query = query.bind(t);
        }
        if let Some(t) = filter.start_time_max {
            query = query.bind(t);
        }
        if let Some(trace_id) = &filter.trace_id {
            query = query.bind(trace_id.as_str());
        }
        if let Some(id) = filter.before_id {
            query = query.bind(id);
        }
        let rows = query
            .bind(i64::from(filter.limit) + 1)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable("query spans"))?;
        let mut spans =
            rows.iter().map(span_from).collect::<Result<Vec<_>, _>>().map_err(unavailable("read span"))?;
        let more = spans.len() > filter.limit as usize;
        spans.truncate(filter.limit as usize);
        let next_before_id = if more { spans.last().map(|s| s.id) } else { None };
        Ok(SpanPage { spans, next_before_id })
    }

    /// Number of stored spans (for tests and benchmarks).
    pub async fn count_spans(&self) -> Result<i64, Error> {
        sqlx::query_scalar("SELECT COUNT(*) FROM spans")
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable("count spans"))
    }
}
