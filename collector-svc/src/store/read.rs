//! The read path: projects and spans, newest first, paged by row id as Phoenix pages them
//! (a page holds ids at most its `max_id`; the next page starts at the first id not shown).

use sqlx::{Row as _, any::AnyRow};

use super::sql::{Arg, Sql};
use super::{Backend, Store, unavailable};
use crate::decode::attribute_index::{self, Scalar};
use crate::error::Error;

/// A project named by its row id or by its name, never one taken for the other (issue 18.1:
/// a project *named* "6" must not answer for project 6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectRef {
    /// The row id (what a Project GlobalID carries).
    Id(i64),
    /// The unique name.
    Name(String),
}

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
    /// Span count and latest span start, when asked for.
    pub stats: Option<ProjectStats>,
}

/// What a project holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProjectStats {
    /// Spans stored.
    pub span_count: i64,
    /// Start of the latest span, Unix nanoseconds (0 = none).
    pub last_span_start_unix_nano: i64,
}

/// Which projects to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectFilter {
    /// Only ids at most this (the page's first row).
    pub max_id: Option<i64>,
    /// Only names containing this, ignoring case.
    pub name_contains: Option<String>,
    /// Page size.
    pub limit: u32,
    /// Fill in [`StoredProject::stats`].
    pub with_stats: bool,
}

/// One page of projects, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectPage {
    /// The projects.
    pub projects: Vec<StoredProject>,
    /// The `max_id` of the next page, when there is one.
    pub next_max_id: Option<i64>,
}

/// Which spans have a given parent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ParentFilter {
    /// Any parent or none.
    #[default]
    Any,
    /// Root spans only (Phoenix's `parent_id=null`).
    Roots,
    /// Children of this span id.
    Of(String),
}

/// A typed attribute value to match, as Phoenix's `attribute=key:value` reads its value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    /// A string attribute equal to this.
    Text(String),
    /// A number equal to this (integer or whole float).
    Int(i64),
    /// A number equal to this.
    Real(f64),
    /// A boolean attribute equal to this.
    Bool(bool),
}

/// One attribute condition.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeMatch {
    /// Dotted key, e.g. `llm.model_name` (a flat key, or a path into nested values).
    pub key: String,
    /// The value it must have.
    pub value: AttributeValue,
}

/// Which spans of a project to read. Each non-empty list keeps spans whose field is one of
/// its values; all conditions hold together.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpanFilter {
    /// The project's row id.
    pub project_id: i64,
    /// Spans starting at or after this time.
    pub start_time_min: Option<i64>,
    /// Spans starting before this time.
    pub start_time_max: Option<i64>,
    /// Trace ids (lower-case hex, matched exactly).
    pub trace_ids: Vec<String>,
    /// Span ids.
    pub span_ids: Vec<String>,
    /// Parent condition.
    pub parent: ParentFilter,
    /// Span names.
    pub names: Vec<String>,
    /// OpenInference kinds (upper case).
    pub span_kinds: Vec<String>,
    /// `UNSET`, `OK`, `ERROR`.
    pub status_codes: Vec<String>,
    /// Attribute conditions.
    pub attributes: Vec<AttributeMatch>,
    /// Only ids at most this (the page's first row).
    pub max_id: Option<i64>,
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
    pub span_kind: String,
}

/// One page of spans, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanPage {
    /// The spans.
    pub spans: Vec<StoredSpan>,
    /// The `max_id` of the next page, when there is one.
    pub next_max_id: Option<i64>,
}

fn project_from(row: &AnyRow) -> Result<StoredProject, sqlx::Error> {
    Ok(StoredProject {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        description: row.try_get(2)?,
        created_at_unix_nano: row.try_get(3)?,
        stats: None,
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
        span_kind: row.try_get(16)?,
    })
}

const PROJECT_COLUMNS: &str = "SELECT id, name, description, created_at FROM projects";
const SPAN_COLUMNS: &str = "SELECT id, trace_id, span_id, parent_span_id, name, kind, start_time, end_time, \
     status_code, status_message, attributes, events, links, resource, ingested_by_user_id, ingested_by_kind, \
     span_kind FROM spans";

/// Splits a page read with `limit + 1` rows into the page and the next page's first id.
fn split_page<T>(mut rows: Vec<T>, limit: u32, id: impl Fn(&T) -> i64) -> (Vec<T>, Option<i64>) {
    let next = if rows.len() > limit as usize { rows.get(limit as usize).map(&id) } else { None };
    rows.truncate(limit as usize);
    (rows, next)
}

/// Appends the condition that `attribute` holds (see [`AttributeValue`] for the typing).
fn push_attribute(sql: &mut Sql, backend: Backend, attribute: &AttributeMatch) {
    let key = attribute.key.as_str();
    // A flat key (`"llm.model_name"` as one key, as OTLP attributes are stored), or the same
    // dotted path into nested values (a kvlist attribute).
    let nested = key.contains('.');
    sql.push("(");
    push_attribute_at(sql, backend, key, false, &attribute.value);
    if nested {
        sql.push(" OR ");
        push_attribute_at(sql, backend, key, true, &attribute.value);
    }
    sql.push(")");
}

fn push_attribute_at(sql: &mut Sql, backend: Backend, key: &str, nested: bool, value: &AttributeValue) {
    match backend {
        Backend::Sqlite => {
            // SQLite's JSON path labels cannot contain a double quote: such a key matches nothing.
            if key.contains('"') {
                sql.push("1 = 0");
                return;
            }
            let path = if nested {
                let labels: Vec<String> = key.split('.').map(|part| format!("\"{part}\"")).collect();
                format!("$.{}", labels.join("."))
            } else {
                format!("$.\"{key}\"")
            };
            let type_of = |sql: &mut Sql| {
                sql.push("json_type(spans.attributes, ").arg(Arg::Text(path.clone())).push(")");
            };
            let value_of = |sql: &mut Sql| {
                sql.push("json_extract(spans.attributes, ").arg(Arg::Text(path.clone())).push(")");
            };
            match value {
                AttributeValue::Bool(b) => {
                    type_of(sql);
                    sql.push(if *b { " = 'true'" } else { " = 'false'" });
                }
                AttributeValue::Text(s) => {
                    type_of(sql);
                    sql.push(" = 'text' AND ");
                    value_of(sql);
                    sql.push(" = ").arg(Arg::Text(s.clone()));
                }
                AttributeValue::Int(_) | AttributeValue::Real(_) => {
                    type_of(sql);
                    sql.push(" IN ('integer', 'real') AND ");
                    value_of(sql);
                    sql.push(" = ").arg(number(value));
                }
            }
        }
        Backend::Postgres => {
            let at = |sql: &mut Sql| {
                if nested {
                    sql.push("(spans.attributes::jsonb #> string_to_array(")
                        .arg(Arg::Text(key.to_owned()))
                        .push(", '.'))");
                } else {
                    sql.push("(spans.attributes::jsonb -> ").arg(Arg::Text(key.to_owned())).push(")");
                }
            };
            sql.push("jsonb_typeof(");
            at(sql);
            match value {
                AttributeValue::Bool(b) => {
                    sql.push(") = 'boolean' AND ");
                    at(sql);
                    sql.push(if *b { " #>> '{}' = 'true'" } else { " #>> '{}' = 'false'" });
                }
                AttributeValue::Text(s) => {
                    sql.push(") = 'string' AND ");
                    at(sql);
                    sql.push(" #>> '{}' = ").arg(Arg::Text(s.clone()));
                }
                AttributeValue::Int(_) | AttributeValue::Real(_) => {
                    sql.push(") = 'number' AND (");
                    at(sql);
                    // The number travels as text: PostgreSQL parses it as numeric exactly, where a
                    // binary float parameter cast to numeric does not compare equal.
                    sql.push(" #>> '{}')::numeric = CAST(").arg(number_text(value)).push(" AS numeric)");
                }
            }
        }
    }
}

/// How a span page's ids are found.
#[derive(Debug, Clone, Copy)]
enum Walk<'a> {
    /// Through the spans table's own indexes.
    Spans,
    /// Through the attribute index, by this condition's hash (spans stored with their hashes).
    AttributeIndex(&'a AttributeMatch),
    /// Spans stored without hashes (before the index existed, or by an older collector).
    NotIndexed,
}

fn scalar(value: &AttributeValue) -> Scalar<'_> {
    match value {
        AttributeValue::Text(s) => Scalar::Text(s),
        AttributeValue::Int(n) => Scalar::Int(*n),
        AttributeValue::Real(d) => Scalar::Real(*d),
        AttributeValue::Bool(b) => Scalar::Bool(*b),
    }
}

/// The attribute index key of `attribute` (see `decode::attribute_index`).
fn attribute_hash(attribute: &AttributeMatch) -> i64 {
    attribute_index::hash(&attribute.key, scalar(&attribute.value))
}

fn number_text(value: &AttributeValue) -> Arg {
    match value {
        AttributeValue::Int(n) => Arg::Text(n.to_string()),
        AttributeValue::Real(f) => Arg::Text(f.to_string()),
        AttributeValue::Bool(_) | AttributeValue::Text(_) => Arg::Text("0".into()),
    }
}

fn number(value: &AttributeValue) -> Arg {
    match value {
        AttributeValue::Int(n) => Arg::Int(*n),
        AttributeValue::Real(f) => Arg::Real(*f),
        AttributeValue::Bool(_) | AttributeValue::Text(_) => Arg::Int(0),
    }
}

impl Store {
    /// Projects matching `filter`, newest first.
    pub async fn list_projects(&self, filter: &ProjectFilter) -> Result<ProjectPage, Error> {
        let mut sql = Sql::new(self.backend, PROJECT_COLUMNS);
        sql.push(" WHERE 1 = 1");
        if let Some(max_id) = filter.max_id {
            sql.push(" AND id <= ").arg(Arg::Int(max_id));
        }
        if let Some(part) = &filter.name_contains {
            let position = match self.backend {
                Backend::Sqlite => " AND instr(lower(name), lower(",
                Backend::Postgres => " AND strpos(lower(name), lower(",
            };
            sql.push(position).arg(Arg::Text(part.clone())).push(")) > 0");
        }
        sql.push(" ORDER BY id DESC LIMIT ").arg(Arg::Int(i64::from(filter.limit) + 1));
        let rows = sql.query().fetch_all(&self.pool).await.map_err(unavailable("list projects"))?;
        let projects = rows
            .iter()
            .map(project_from)
            .collect::<Result<Vec<_>, _>>()
            .map_err(unavailable("read project"))?;
        let (mut projects, next_max_id) = split_page(projects, filter.limit, |p| p.id);
        if filter.with_stats {
            for project in &mut projects {
                project.stats = Some(self.project_stats(project.id).await?);
            }
        }
        Ok(ProjectPage { projects, next_max_id })
    }

    /// The project `reference` names, if it exists.
    pub async fn find_project(
        &self,
        reference: &ProjectRef,
        with_stats: bool,
    ) -> Result<Option<StoredProject>, Error> {
        let mut sql = Sql::new(self.backend, PROJECT_COLUMNS);
        match reference {
            ProjectRef::Id(id) => sql.push(" WHERE id = ").arg(Arg::Int(*id)),
            ProjectRef::Name(name) => sql.push(" WHERE name = ").arg(Arg::Text(name.clone())),
        };
        let row = sql.query().fetch_optional(&self.pool).await.map_err(unavailable("find project"))?;
        let Some(mut project) =
            row.as_ref().map(project_from).transpose().map_err(unavailable("read project"))?
        else {
            return Ok(None);
        };
        if with_stats {
            project.stats = Some(self.project_stats(project.id).await?);
        }
        Ok(Some(project))
    }

    /// Spans stored in a project (summed over its traces) and the start of the latest.
    async fn project_stats(&self, project_id: i64) -> Result<ProjectStats, Error> {
        let mut sql =
            Sql::new(self.backend, "SELECT CAST(COALESCE(SUM(span_count), 0) AS BIGINT) FROM traces");
        sql.push(" WHERE project_id = ").arg(Arg::Int(project_id));
        let span_count: i64 = sql
            .query()
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable("count spans"))?
            .try_get(0)
            .map_err(unavailable("count spans"))?;
        let mut sql =
            Sql::new(self.backend, "SELECT CAST(COALESCE(MAX(start_time), 0) AS BIGINT) FROM spans");
        sql.push(" WHERE project_id = ").arg(Arg::Int(project_id));
        let last: i64 = sql
            .query()
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable("latest span"))?
            .try_get(0)
            .map_err(unavailable("latest span"))?;
        Ok(ProjectStats { span_count, last_span_start_unix_nano: last })
    }

    /// Spans of one project matching `filter`, newest first. The page's ids are found first
    /// (from an index alone where the filters allow: a time window sorts ids, not whole rows),
    /// then their rows are read. An attribute filter walks the attribute index unless a trace,
    /// span or parent id already narrows the page to a few rows (or the value is a string too
    /// long to be indexed); spans that predate the index are found by their JSON and merged in.
    pub async fn query_spans(&self, filter: &SpanFilter) -> Result<SpanPage, Error> {
        let wanted = filter.limit as usize + 1;
        let narrowed = !filter.trace_ids.is_empty()
            || !filter.span_ids.is_empty()
            || matches!(filter.parent, ParentFilter::Of(_));
        let indexed = filter.attributes.iter().find(|attribute| scalar(&attribute.value).is_indexed());
        let ids = match indexed {
            Some(attribute) if !narrowed => {
                let mut ids = self.span_ids(filter, Walk::AttributeIndex(attribute)).await?;
                ids.extend(self.span_ids(filter, Walk::NotIndexed).await?);
                ids.sort_unstable_by(|a, b| b.cmp(a));
                ids.dedup();
                ids.truncate(wanted);
                ids
            }
            _ => self.span_ids(filter, Walk::Spans).await?,
        };
        let (ids, next_max_id) = split_page(ids, filter.limit, |id| *id);
        if ids.is_empty() {
            return Ok(SpanPage { spans: Vec::new(), next_max_id });
        }
        let mut sql = Sql::new(self.backend, SPAN_COLUMNS);
        sql.push(" WHERE id IN (");
        for (i, id) in ids.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.arg(Arg::Int(*id));
        }
        sql.push(") ORDER BY id DESC");
        let rows = sql.query().fetch_all(&self.pool).await.map_err(unavailable("read spans"))?;
        let spans =
            rows.iter().map(span_from).collect::<Result<Vec<_>, _>>().map_err(unavailable("read span"))?;
        Ok(SpanPage { spans, next_max_id })
    }

    /// Up to `filter.limit + 1` ids of matching spans, newest first, found as `walk` says.
    async fn span_ids(&self, filter: &SpanFilter, walk: Walk<'_>) -> Result<Vec<i64>, Error> {
        let (mut sql, order) = match walk {
            Walk::Spans => (Sql::new(self.backend, "SELECT spans.id FROM spans"), "spans.id"),
            // SQLite has no statistics to tell it the partial index is nearly empty.
            Walk::NotIndexed => {
                let from = match self.backend {
                    Backend::Sqlite => "SELECT spans.id FROM spans INDEXED BY spans_attributes_not_indexed",
                    Backend::Postgres => "SELECT spans.id FROM spans",
                };
                (Sql::new(self.backend, from), "spans.id")
            }
            Walk::AttributeIndex(attribute) => {
                let mut sql = Sql::new(
                    self.backend,
                    "SELECT spans.id FROM span_attributes JOIN spans ON spans.id = span_attributes.span_row_id",
                );
                sql.push(" WHERE span_attributes.project_id = ")
                    .arg(Arg::Int(filter.project_id))
                    .push(" AND span_attributes.value_hash = ")
                    .arg(Arg::Int(attribute_hash(attribute)));
                if let Some(id) = filter.max_id {
                    sql.push(" AND span_attributes.span_row_id <= ").arg(Arg::Int(id));
                }
                (sql, "span_attributes.span_row_id")
            }
        };
        sql.push(if matches!(walk, Walk::AttributeIndex(_)) { " AND " } else { " WHERE " });
        sql.push("spans.project_id = ").arg(Arg::Int(filter.project_id));
        if matches!(walk, Walk::NotIndexed) {
            sql.push(" AND spans.attributes_indexed = 0");
        }
        if let Some(t) = filter.start_time_min {
            sql.push(" AND spans.start_time >= ").arg(Arg::Int(t));
        }
        if let Some(t) = filter.start_time_max {
            sql.push(" AND spans.start_time < ").arg(Arg::Int(t));
        }
        // Column filters, and how many of them name one value (an index walks those in id order).
        let (mut columns_filtered, mut single_valued) = (0, 0);
        for (column, values) in [
            ("trace_id", &filter.trace_ids),
            ("span_id", &filter.span_ids),
            ("name", &filter.names),
            ("span_kind", &filter.span_kinds),
            ("status_code", &filter.status_codes),
        ] {
            if !values.is_empty() {
                columns_filtered += 1;
                single_valued += usize::from(values.len() == 1);
                sql.push(" AND spans.").push(column).push(" IN ").list(values);
            }
        }
        match &filter.parent {
            ParentFilter::Any => {}
            ParentFilter::Roots => {
                columns_filtered += 1;
                single_valued += 1;
                sql.push(" AND spans.parent_span_id = ''");
            }
            ParentFilter::Of(parent) => {
                sql.push(" AND spans.parent_span_id = ").arg(Arg::Text(parent.clone()));
            }
        }
        for attribute in &filter.attributes {
            sql.push(" AND ");
            push_attribute(&mut sql, self.backend, attribute);
        }
        if let Some(id) = filter.max_id {
            sql.push(" AND spans.id <= ").arg(Arg::Int(id));
        }
        sql.push(" ORDER BY ").push(order).push(" DESC LIMIT ").arg(Arg::Int(i64::from(filter.limit) + 1));
        // A filter on one value (or an attribute, through its index) has an index that yields ids
        // newest first, so such a page needs no sort. PostgreSQL cannot estimate JSON conditions
        // (it guesses "very few", then filters the whole project and sorts it: 9 s for a common
        // attribute over 1M spans), and for two column filters it combines their indexes and
        // sorts thousands of ids (108 ms p50 for span_kind and status_code): told not to sort,
        // it walks one index newest first and checks the rest, stopping at the page. Not with a
        // time window, or when every column filter lists several values: then no index walk is
        // in order, and "no sort" would walk the whole project.
        let no_sort = self.backend == Backend::Postgres
            && (!filter.attributes.is_empty()
                || (columns_filtered >= 2
                    && single_valued >= 1
                    && filter.start_time_min.is_none()
                    && filter.start_time_max.is_none()));
        let rows = if no_sort {
            let mut tx = self.pool.begin().await.map_err(unavailable("query spans"))?;
            sqlx::query("SET LOCAL enable_sort = off")
                .execute(&mut *tx)
                .await
                .map_err(unavailable("query spans"))?;
            let rows = sql.query().fetch_all(&mut *tx).await.map_err(unavailable("query spans"))?;
            tx.commit().await.map_err(unavailable("query spans"))?;
            rows
        } else {
            sql.query().fetch_all(&self.pool).await.map_err(unavailable("query spans"))?
        };
        rows.iter()
            .map(|row| row.try_get::<i64, _>(0))
            .collect::<Result<Vec<_>, _>>()
            .map_err(unavailable("read span id"))
    }

    /// Number of stored spans (for tests and benchmarks).
    pub async fn count_spans(&self) -> Result<i64, Error> {
        sqlx::query_scalar("SELECT COUNT(*) FROM spans")
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable("count spans"))
    }
}
