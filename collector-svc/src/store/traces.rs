//! Reading traces: one row per (project, trace id) kept by the writer (see `insert`), paged
//! by (sort value, id) as Phoenix's `GET /v1/projects/{p}/traces` pages them.

use std::collections::HashMap;

use sqlx::{Row as _, any::AnyRow};

use super::sql::{Arg, Sql};
use super::{Store, unavailable};
use crate::error::Error;

/// What traces are ordered by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TraceSort {
    /// Start of the earliest span.
    #[default]
    StartTime,
    /// End of the latest span minus start of the earliest.
    Latency,
}

/// Which traces of a project to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceFilter {
    /// The project's row id.
    pub project_id: i64,
    /// Traces starting at or after this time.
    pub start_time_min: Option<i64>,
    /// Traces starting before this time.
    pub start_time_max: Option<i64>,
    /// Order.
    pub sort: TraceSort,
    /// Smallest first (else largest first).
    pub ascending: bool,
    /// Continue strictly after this (sort value, id).
    pub after: Option<(i64, i64)>,
    /// Only traces with (or without) an errored span.
    pub has_error: Option<bool>,
    /// Latency at least this, nanoseconds.
    pub min_latency: Option<i64>,
    /// Latency at most this, nanoseconds.
    pub max_latency: Option<i64>,
    /// Page size.
    pub limit: u32,
    /// Read each trace's spans too.
    pub include_spans: bool,
}

/// A span as listed inside a trace (no attributes).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct TraceSpanRow {
    pub id: i64,
    pub span_id: String,
    pub parent_span_id: String,
    pub name: String,
    pub span_kind: String,
    pub status_code: String,
    pub start_time_unix_nano: i64,
    pub end_time_unix_nano: i64,
}

/// A trace row.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct StoredTrace {
    pub id: i64,
    pub trace_id: String,
    pub project_id: i64,
    pub start_time_unix_nano: i64,
    pub end_time_unix_nano: i64,
    pub latency_nano: i64,
    pub token_count_prompt: i64,
    pub token_count_completion: i64,
    /// With `include_spans`, by start time.
    pub spans: Vec<TraceSpanRow>,
}

impl StoredTrace {
    /// The value the page is sorted by.
    pub fn sort_value(&self, sort: TraceSort) -> i64 {
        match sort {
            TraceSort::StartTime => self.start_time_unix_nano,
            TraceSort::Latency => self.latency_nano,
        }
    }
}

/// One page of traces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracePage {
    /// The traces.
    pub traces: Vec<StoredTrace>,
    /// The (sort value, id) of the last trace shown, when there are more.
    pub next_after: Option<(i64, i64)>,
}

fn trace_from(row: &AnyRow) -> Result<StoredTrace, sqlx::Error> {
    Ok(StoredTrace {
        id: row.try_get(0)?,
        trace_id: row.try_get(1)?,
        project_id: row.try_get(2)?,
        start_time_unix_nano: row.try_get(3)?,
        end_time_unix_nano: row.try_get(4)?,
        latency_nano: row.try_get(5)?,
        token_count_prompt: row.try_get(6)?,
        token_count_completion: row.try_get(7)?,
        spans: Vec::new(),
    })
}

fn trace_span_from(row: &AnyRow) -> Result<(String, TraceSpanRow), sqlx::Error> {
    Ok((
        row.try_get(1)?,
        TraceSpanRow {
            id: row.try_get(0)?,
            span_id: row.try_get(2)?,
            parent_span_id: row.try_get(3)?,
            name: row.try_get(4)?,
            span_kind: row.try_get(5)?,
            status_code: row.try_get(6)?,
            start_time_unix_nano: row.try_get(7)?,
            end_time_unix_nano: row.try_get(8)?,
        },
    ))
}

impl Store {
    /// Traces of one project matching `filter`.
    pub async fn query_traces(&self, filter: &TraceFilter) -> Result<TracePage, Error> {
        let column = match filter.sort {
            TraceSort::StartTime => "start_time",
            TraceSort::Latency => "latency",
        };
        let mut sql = Sql::new(
            self.backend,
            "SELECT id, trace_id, project_id, start_time, end_time, latency, token_count_prompt, \
             token_count_completion FROM traces",
        );
        sql.push(" WHERE project_id = ").arg(Arg::Int(filter.project_id));
        if let Some(t) = filter.start_time_min {
            sql.push(" AND start_time >= ").arg(Arg::Int(t));
        }
        if let Some(t) = filter.start_time_max {
            sql.push(" AND start_time < ").arg(Arg::Int(t));
        }
        match filter.has_error {
            Some(true) => {
                sql.push(" AND error_count > 0");
            }
            Some(false) => {
                sql.push(" AND error_count = 0");
            }
            None => {}
        }
        if let Some(min) = filter.min_latency {
            sql.push(" AND latency >= ").arg(Arg::Int(min));
        }
        if let Some(max) = filter.max_latency {
            sql.push(" AND latency <= ").arg(Arg::Int(max));
        }
        let (compare, direction) = if filter.ascending { (">", "ASC") } else { ("<", "DESC") };
        if let Some((value, id)) = filter.after {
            sql.push(" AND (").push(column).push(", id) ").push(compare).push(" (");
            sql.arg(Arg::Int(value)).push(", ").arg(Arg::Int(id)).push(")");
        }
        sql.push(" ORDER BY ").push(column).push(" ").push(direction).push(", id ").push(direction);
        sql.push(" LIMIT ").arg(Arg::Int(i64::from(filter.limit) + 1));
        let rows = sql.query().fetch_all(&self.pool).await.map_err(unavailable("query traces"))?;
        let mut traces =
            rows.iter().map(trace_from).collect::<Result<Vec<_>, _>>().map_err(unavailable("read trace"))?;
        let more = traces.len() > filter.limit as usize;
        traces.truncate(filter.limit as usize);
        let next_after = if more { traces.last().map(|t| (t.sort_value(filter.sort), t.id)) } else { None };
        if filter.include_spans && !traces.is_empty() {
            self.attach_spans(filter.project_id, &mut traces).await?;
        }
        Ok(TracePage { traces, next_after })
    }

    async fn attach_spans(&self, project_id: i64, traces: &mut [StoredTrace]) -> Result<(), Error> {
        let ids: Vec<String> = traces.iter().map(|t| t.trace_id.clone()).collect();
        let mut sql = Sql::new(
            self.backend,
            "SELECT id, trace_id, span_id, parent_span_id, name, span_kind, status_code, start_time, end_time \
             FROM spans",
        );
        sql.push(" WHERE project_id = ").arg(Arg::Int(project_id));
        sql.push(" AND trace_id IN ").list(&ids).push(" ORDER BY start_time, id");
        let rows = sql.query().fetch_all(&self.pool).await.map_err(unavailable("trace spans"))?;
        let mut by_trace: HashMap<String, Vec<TraceSpanRow>> = HashMap::new();
        for row in &rows {
            let (trace_id, span) = trace_span_from(row).map_err(unavailable("read trace span"))?;
            by_trace.entry(trace_id).or_default().push(span);
        }
        for trace in traces {
            trace.spans = by_trace.remove(&trace.trace_id).unwrap_or_default();
        }
        Ok(())
    }
}
