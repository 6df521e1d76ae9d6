//! Multi-row span inserts: a few fixed statement sizes (so each connection prepares them once)
//! inside one transaction per writer batch, `ON CONFLICT DO NOTHING` so retried exports do not
//! duplicate spans.

use std::fmt::Write as _;
use std::sync::Arc;

use sqlx::AssertSqlSafe;

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
];

/// Rows per statement, largest first; 512 × 16 parameters stays under SQLite's 32766.
const CHUNK_SIZES: [usize; 5] = [512, 128, 32, 8, 1];

/// The prepared INSERT text for each chunk size.
#[derive(Debug)]
pub(super) struct InsertStatements {
    by_size: Vec<(usize, Arc<str>)>,
}

impl InsertStatements {
    pub(super) fn new(backend: Backend) -> Self {
        let by_size = CHUNK_SIZES.iter().map(|&rows| (rows, Arc::from(insert_sql(backend, rows)))).collect();
        Self { by_size }
    }

    /// The largest statement that fits in `remaining` rows.
    fn pick(&self, remaining: usize) -> Option<(usize, Arc<str>)> {
        self.by_size.iter().find(|(rows, _)| *rows <= remaining).cloned()
    }
}

fn insert_sql(backend: Backend, rows: usize) -> String {
    let mut sql = format!("INSERT INTO spans ({}) VALUES ", COLUMNS.join(", "));
    let mut n = 0;
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for col in 0..COLUMNS.len() {
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
    sql.push_str(" ON CONFLICT (trace_id, span_id) DO NOTHING");
    sql
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
        let mut rows = rows.into_iter();
        let mut remaining = total;
        while let Some((size, sql)) = self.insert.pick(remaining) {
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for (index, row) in rows.by_ref().take(size) {
                let Some((project_ids, resources, user_id, kind)) = metas.get(index) else { continue };
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
                    .bind(*kind);
            }
            inserted += query.execute(&mut *tx).await.map_err(unavailable("insert spans"))?.rows_affected();
            remaining -= size;
        }
        tx.commit().await.map_err(unavailable("commit"))?;
        Ok(inserted)
    }
}
