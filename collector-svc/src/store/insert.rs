//! Multi-row span inserts: a few fixed statement sizes (so each connection prepares them once)
//! inside one transaction per writer batch, `ON CONFLICT DO NOTHING` so retried exports do not
//! duplicate spans. The rows actually stored come back (`RETURNING`), and their share of each
//! trace is added to the `traces` table in the same transaction, and their attribute values to
//! the attribute index (`span_attributes`, see `decode::attribute_index`).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

use sqlx::{AssertSqlSafe, Row as _};

use super::{Backend, Store, unavailable};
use crate::decode::rows::IngestBatch;

const COLUMNS: &[&str] = &[
    "project_id",
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "kind",
    "start_time",
    "end_time",
    "status_code",
    "status_message",
    "attributes",
    "events",
    "links",
    "resource",
    "ingested_by_user_id",
    "ingested_by_kind",
    "span_kind",
    "llm_token_count_prompt",
    "llm_token_count_completion",
    "attributes_indexed",
];

/// What each stored row contributes to its trace, and what finds its attribute hashes.
const RETURNING: &str = " RETURNING project_id, trace_id, start_time, end_time, status_code, \
                         llm_token_count_prompt, llm_token_count_completion, id, span_id";

const TRACE_COLUMNS: &[&str] = &[
    "project_id",
    "trace_id",
    "start_time",
    "end_time",
    "latency",
    "span_count",
    "error_count",
    "token_count_prompt",
    "token_count_completion",
];

/// Rows per statement, largest first; 512 × 20 parameters stays under SQLite's 32766.
const CHUNK_SIZES: [usize; 5] = [512, 128, 32, 8, 1];

/// Attribute index rows per statement (three parameters each).
const INDEX_CHUNK_SIZES: [usize; 6] = [2048, 512, 128, 32, 8, 1];

/// The prepared INSERT texts for each chunk size.
#[derive(Debug)]
pub(super) struct InsertStatements {
    spans: Vec<(usize, Arc<str>)>,
    traces: Vec<(usize, Arc<str>)>,
    attributes: Vec<(usize, Arc<str>)>,
}

impl InsertStatements {
    pub(super) fn new(backend: Backend) -> Self {
        let spans = CHUNK_SIZES.iter().map(|&rows| (rows, Arc::from(insert_sql(backend, rows)))).collect();
        let traces = CHUNK_SIZES.iter().map(|&rows| (rows, Arc::from(traces_sql(backend, rows)))).collect();
        let attributes =
            INDEX_CHUNK_SIZES.iter().map(|&rows| (rows, Arc::from(attributes_sql(backend, rows)))).collect();
        Self { spans, traces, attributes }
    }

    /// The largest span statement that fits in `remaining` rows.
    fn pick(&self, remaining: usize) -> Option<(usize, Arc<str>)> {
        self.spans.iter().find(|(rows, _)| *rows <= remaining).cloned()
    }

    /// The largest trace statement that fits in `remaining` rows.
    fn pick_traces(&self, remaining: usize) -> Option<(usize, Arc<str>)> {
        self.traces.iter().find(|(rows, _)| *rows <= remaining).cloned()
    }

    /// The largest attribute index statement that fits in `remaining` rows.
    fn pick_attributes(&self, remaining: usize) -> Option<(usize, Arc<str>)> {
        self.attributes.iter().find(|(rows, _)| *rows <= remaining).cloned()
    }
}

/// `(…), (…)` with `rows` rows of `columns` placeholders each.
fn values(sql: &mut String, backend: Backend, rows: usize, columns: usize) {
    let mut n = 0;
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for col in 0..columns {
            if col > 0 {
                sql.push_str(", ");
            }
            n += 1;
            match backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => {
                    let _ = write!(sql, "${n}");
                }
            }
        }
        sql.push(')');
    }
}

fn insert_sql(backend: Backend, rows: usize) -> String {
    let mut sql = format!("INSERT INTO spans ({}) VALUES ", COLUMNS.join(", "));
    values(&mut sql, backend, rows, COLUMNS.len());
    sql.push_str(" ON CONFLICT (trace_id, span_id) DO NOTHING");
    sql.push_str(RETURNING);
    sql
}

/// Index rows of newly stored spans (a retried export's rows are already there).
fn attributes_sql(backend: Backend, rows: usize) -> String {
    let mut sql = String::from("INSERT INTO span_attributes (project_id, value_hash, span_row_id) VALUES ");
    values(&mut sql, backend, rows, 3);
    sql.push_str(" ON CONFLICT DO NOTHING");
    sql
}

/// Adds each row's share to its trace (times widen, counts add up).
fn traces_sql(backend: Backend, rows: usize) -> String {
    let mut sql = format!("INSERT INTO traces ({}) VALUES ", TRACE_COLUMNS.join(", "));
    values(&mut sql, backend, rows, TRACE_COLUMNS.len());
    let (least, greatest) = match backend {
        Backend::Sqlite => ("MIN", "MAX"),
        Backend::Postgres => ("LEAST", "GREATEST"),
    };
    let start = format!("{least}(traces.start_time, excluded.start_time)");
    let end = format!("{greatest}(traces.end_time, excluded.end_time)");
    let _ = write!(
        sql,
        " ON CONFLICT (project_id, trace_id) DO UPDATE SET start_time = {start}, end_time = {end}, \
         latency = {end} - {start}, span_count = traces.span_count + excluded.span_count, \
         error_count = traces.error_count + excluded.error_count, \
         token_count_prompt = traces.token_count_prompt + excluded.token_count_prompt, \
         token_count_completion = traces.token_count_completion + excluded.token_count_completion"
    );
    sql
}

/// One trace's share of a batch.
#[derive(Debug, Default)]
struct TraceShare {
    start: i64,
    end: i64,
    spans: i64,
    errors: i64,
    prompt: i64,
    completion: i64,
}

impl TraceShare {
    fn add(&mut self, row: &sqlx::any::AnyRow) -> Result<(), sqlx::Error> {
        let (start, end): (i64, i64) = (row.try_get(2)?, row.try_get(3)?);
        if self.spans == 0 {
            (self.start, self.end) = (start, end);
        } else {
            (self.start, self.end) = (self.start.min(start), self.end.max(end));
        }
        self.spans += 1;
        self.errors += i64::from(row.try_get::<String, _>(4)? == "ERROR");
        self.prompt += row.try_get::<i64, _>(5)?;
        self.completion += row.try_get::<i64, _>(6)?;
        Ok(())
    }
}

/// One export's rows with its project ids resolved (same order as `batch.projects`).
#[derive(Debug)]
pub struct ResolvedBatch {
    /// The export.
    pub batch: IngestBatch,
    /// Database id of each of `batch.projects`.
    pub project_ids: Vec<i64>,
}

impl Store {
    /// Inserts every row of `batches` in one transaction; returns how many rows were new.
    pub async fn insert_batches(&self, batches: Vec<ResolvedBatch>) -> Result<u64, crate::error::Error> {
        let total: usize = batches.iter().map(|b| b.batch.rows.len()).sum();
        let mut rows = Vec::with_capacity(total);
        let mut metas = Vec::with_capacity(batches.len());
        for (index, resolved) in batches.into_iter().enumerate() {
            let IngestBatch { resources, rows: batch_rows, ingested_by_user_id, ingested_by_kind, .. } =
                resolved.batch;
            rows.extend(batch_rows.into_iter().map(|row| (index, row)));
            metas.push((resolved.project_ids, resources, ingested_by_user_id, ingested_by_kind));
        }
        let mut tx = self.pool.begin().await.map_err(unavailable("begin"))?;
        let mut inserted = 0;
        let mut traces: BTreeMap<(i64, String), TraceShare> = BTreeMap::new();
        let mut index_rows: Vec<(i64, i64, i64)> = Vec::new();
        let mut rows = rows.into_iter();
        let mut remaining = total;
        while let Some((size, sql)) = self.insert.pick(remaining) {
            let mut query = sqlx::query(AssertSqlSafe(sql));
            // Which hashes belong to which row, found again by the (trace_id, span_id) it returns.
            let mut hashes: HashMap<(String, String), Vec<i64>> = HashMap::with_capacity(size);
            for (index, mut row) in rows.by_ref().take(size) {
                let Some((project_ids, resources, user_id, kind)) = metas.get(index) else { continue };
                let attribute_hashes = std::mem::take(&mut row.attribute_hashes);
                if !attribute_hashes.is_empty() {
                    hashes.insert((row.trace_id.clone(), row.span_id.clone()), attribute_hashes);
                }
                query = query
                    .bind(project_ids.get(row.project).copied().unwrap_or_default())
                    .bind(row.trace_id)
                    .bind(row.span_id)
                    .bind(row.parent_span_id)
                    .bind(row.name)
                    .bind(row.kind)
                    .bind(row.start_time_unix_nano)
                    .bind(row.end_time_unix_nano)
                    .bind(row.status_code)
                    .bind(row.status_message)
                    .bind(row.attributes_json)
                    .bind(row.events_json)
                    .bind(row.links_json)
                    .bind(resources.get(row.resource).map(String::as_str).unwrap_or("{}"))
                    .bind(*user_id)
                    .bind(*kind)
                    .bind(row.span_kind)
                    .bind(row.llm_token_count_prompt)
                    .bind(row.llm_token_count_completion)
                    .bind(1_i64);
            }
            let stored = query.fetch_all(&mut *tx).await.map_err(unavailable("insert spans"))?;
            for row in &stored {
                let key = (row.try_get::<i64, _>(0), row.try_get::<String, _>(1));
                let (Ok(project), Ok(mut trace)) = key else { continue };
                if !hashes.is_empty() {
                    let id: i64 = row.try_get(7).map_err(unavailable("read stored span"))?;
                    let span = (trace, row.try_get::<String, _>(8).map_err(unavailable("read stored span"))?);
                    if let Some(values) = hashes.remove(&span) {
                        index_rows.extend(values.into_iter().map(|hash| (project, hash, id)));
                    }
                    trace = span.0;
                }
                traces
                    .entry((project, trace))
                    .or_default()
                    .add(row)
                    .map_err(unavailable("read stored span"))?;
            }
            inserted += stored.len() as u64;
            remaining -= size;
        }
        self.add_to_traces(&mut tx, traces).await?;
        self.add_to_attribute_index(&mut tx, index_rows).await?;
        tx.commit().await.map_err(unavailable("commit"))?;
        Ok(inserted)
    }

    /// Inserts index rows in key order (neighbouring B-tree pages, and a fixed lock order).
    async fn add_to_attribute_index(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        mut index_rows: Vec<(i64, i64, i64)>,
    ) -> Result<(), crate::error::Error> {
        index_rows.sort_unstable();
        let mut remaining = index_rows.len();
        let mut entries = index_rows.into_iter();
        while let Some((size, sql)) = self.insert.pick_attributes(remaining) {
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for (project, hash, id) in entries.by_ref().take(size) {
                query = query.bind(project).bind(hash).bind(id);
            }
            query.execute(&mut **tx).await.map_err(unavailable("index attributes"))?;
            remaining -= size;
        }
        Ok(())
    }

    /// Upserts the batch's share of each trace, in key order (so concurrent writers on
    /// PostgreSQL lock trace rows in the same order and cannot deadlock).
    async fn add_to_traces(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        traces: BTreeMap<(i64, String), TraceShare>,
    ) -> Result<(), crate::error::Error> {
        let mut remaining = traces.len();
        let mut shares = traces.into_iter();
        while let Some((size, sql)) = self.insert.pick_traces(remaining) {
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for ((project, trace), share) in shares.by_ref().take(size) {
                query = query
                    .bind(project)
                    .bind(trace)
                    .bind(share.start)
                    .bind(share.end)
                    .bind(share.end - share.start)
                    .bind(share.spans)
                    .bind(share.errors)
                    .bind(share.prompt)
                    .bind(share.completion);
            }
            query.execute(&mut **tx).await.map_err(unavailable("update traces"))?;
            remaining -= size;
        }
        Ok(())
    }
}
