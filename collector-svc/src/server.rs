//! Wiring: bind both listeners, start the writer, serve until shutdown, then drain.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ashgate_proto::collector::span_query_service_server::SpanQueryServiceServer;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, Semaphore, watch};
use tonic::codec::CompressionEncoding;
use tower::Layer as _;

use crate::auth::{AuthLayer, CredentialVerifier};
use crate::config::CollectorConfig;
use crate::error::Error;
use crate::metrics::Metrics;
use crate::pipeline::admission::Ingest;
use crate::pipeline::queue::{IngestQueue, Job};
use crate::pipeline::writer::Writer;
use crate::query::SpanQuery;
use crate::receive::{HttpState, Named, OtlpTraceService, router};
use crate::store::{Backend, Store};

/// How often SQLite's WAL is checkpointed (see [`Store::checkpoint`]).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// A collector with its ports bound and its database migrated, not yet serving.
pub struct Collector {
    config: CollectorConfig,
    verifier: CredentialVerifier,
    grpc: TcpListener,
    http: TcpListener,
    store: Store,
    ingest: Arc<Ingest>,
    jobs: tokio::sync::mpsc::UnboundedReceiver<Job>,
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector").field("grpc", &self.grpc_addr()).field("http", &self.http_addr()).finish()
    }
}

async fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener, Error> {
    TcpListener::bind(addr).await.map_err(|e| Error::Startup(format!("cannot bind {what} on {addr}: {e}")))
}

impl Collector {
    /// Opens the span store and binds the gRPC and HTTP ports (port 0 picks free ones).
    pub async fn bind(config: CollectorConfig, verifier: CredentialVerifier) -> Result<Self, Error> {
        let store = Store::connect(&config.database).await?;
        let grpc = bind(SocketAddr::new(config.host, config.grpc_port), "the OTLP/gRPC port").await?;
        let http = bind(SocketAddr::new(config.host, config.http_port), "the OTLP/HTTP port").await?;
        let (queue, jobs) = IngestQueue::new(config.queue_capacity_spans, config.retry_after_secs);
        let ingest = Arc::new(Ingest {
            queue,
            metrics: Arc::new(Metrics::default()),
            decodes: Arc::new(Semaphore::new(config.max_concurrent_decodes)),
            max_message_bytes: config.max_message_bytes,
            queue_wait: config.queue_wait,
            body_timeout: config.body_timeout,
        });
        Ok(Self { config, verifier, grpc, http, store, ingest, jobs })
    }

    /// Where OTLP/gRPC, span queries and health are served.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc.local_addr().unwrap_or_else(|_| SocketAddr::new(self.config.host, self.config.grpc_port))
    }

    /// Where OTLP/HTTP and `/metrics` are served.
    pub fn http_addr(&self) -> SocketAddr {
        self.http.local_addr().unwrap_or_else(|_| SocketAddr::new(self.config.host, self.config.http_port))
    }

    /// The span store (tests and benchmarks count rows through it).
    pub fn store(&self) -> Store {
        self.store.clone()
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight exports finish
    /// (their commits included), writes whatever is still queued, and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), Error> {
        let Self { config, verifier, grpc, http, store, ingest, jobs } = self;
        let grpc_addr = grpc.local_addr().ok();
        let http_addr = http.local_addr().ok();
        let (stop_writers, writers_stop) = watch::channel(false);
        let jobs = Arc::new(Mutex::new(jobs));
        // SQLite has one writer; PostgreSQL takes commits in parallel.
        let writer_count = if store.backend() == Backend::Postgres { 2 } else { 1 };
        let writers: Vec<_> = (0..writer_count)
            .map(|_| {
                let writer = Writer {
                    store: store.clone(),
                    jobs: jobs.clone(),
                    max_batch_spans: config.max_batch_spans,
                    metrics: ingest.metrics.clone(),
                    hold: config.writer_hold.clone(),
                };
                tokio::spawn(writer.run(writers_stop.clone()))
            })
            .collect();

        let checkpointer = (store.backend() == Backend::Sqlite).then(|| {
            let (store, mut stop) = (store.clone(), writers_stop.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = tick.tick() => store.checkpoint().await,
                        _ = stop.changed() => return,
                    }
                }
            })
        });

        let (health, health_service) = tonic_health::server::health_reporter();
        health.set_serving::<OtlpTraceService>().await;
        health.set_serving::<SpanQueryServiceServer<SpanQuery>>().await;

        let trace =
            AuthLayer::new(verifier.clone()).deny_viewers().layer(OtlpTraceService::new(ingest.clone()));
        let query = SpanQueryServiceServer::new(SpanQuery::new(store.clone()))
            .accept_compressed(CompressionEncoding::Gzip);
        let query = AuthLayer::new(verifier.clone()).layer(query);

        let (signal, signalled) = watch::channel(false);
        let wait = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        // Connections are capped, and a peer that stops answering HTTP/2 pings is dropped, so
        // clients that open connections and hold them cannot use up memory or descriptors.
        let grpc_server = tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(Duration::from_secs(20)))
            .http2_keepalive_timeout(Some(Duration::from_secs(20)))
            .add_service(health_service)
            .add_service(Named::<_, OtlpTraceService>::new(trace))
            .add_service(Named::<_, SpanQueryServiceServer<SpanQuery>>::new(query))
            .serve_with_incoming_shutdown(
                ashgate_identity_client::incoming::capped(grpc, config.max_connections),
                wait(signalled.clone()),
            );
        // Not `axum::serve`: it runs hyper without a timer, so idle and half-sent connections
        // (slowloris) would live for ever.
        let http_server = ashgate_identity_client::http_server::serve(
            http,
            router(HttpState { verifier, ingest: ingest.clone(), store: store.clone() }),
            ashgate_identity_client::http_server::ConnectionLimits::default(),
            wait(signalled),
        );
        tracing::info!(grpc = ?grpc_addr, http = ?http_addr, "collector-svc serving");

        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("collector-svc shutting down: refusing new requests, finishing in-flight exports");
            let _ = signal.send(true);
        });
        let (grpc_result, http_result) = tokio::join!(grpc_server, http_server);

        // Servers are drained: every answered export is committed. Write what is left, then stop.
        health.set_not_serving::<OtlpTraceService>().await;
        let _ = stop_writers.send(true);
        for writer in writers {
            let _ = writer.await;
        }
        if let Some(checkpointer) = checkpointer {
            let _ = checkpointer.await;
            store.checkpoint().await;
        }
        store.close().await;
        tracing::info!(accepted_spans = ingest.metrics.accepted_spans(), "collector-svc stopped");
        grpc_result.map_err(|e| Error::Startup(format!("gRPC server failed: {e}")))?;
        http_result.map_err(|e| Error::Startup(format!("HTTP server failed: {e}")))?;
        Ok(())
    }
}

/// Binds and serves until `shutdown` completes (see [`Collector::run`]).
pub async fn serve(
    config: CollectorConfig,
    verifier: CredentialVerifier,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    Collector::bind(config, verifier).await?.run(shutdown).await
}
