# syntax=docker/dockerfile:1
# The one `ashgate` binary (all-in-one, or one service each: `identity`, `collector`, `gateway`).
# No protoc needed: protox compiles the .proto files in pure Rust; rustls with ring, no OpenSSL.
#
#   docker build -t ashgate:local .
#   docker run --rm -p 6006:6006 -e PHOENIX_HOST=0.0.0.0 ashgate:local        # all-in-one, SQLite
#
# docker-compose.yml runs the fleet (PostgreSQL, Redis, identity x2, collector x2, gateway).

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and the target directory between builds; the binary is copied
# out of the cached target in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin ashgate \
    && install -m 0755 target/release/ashgate /usr/local/bin/ashgate

FROM debian:bookworm-slim AS runtime
# curl: the health checks in docker-compose.yml. ca-certificates: SMTP, OIDC, PostgreSQL and LDAP
# TLS (LDAP trusts the system store unless PHOENIX_LDAP_TLS_CA_CERT_FILE names a CA).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/ashgate --create-home ashgate
COPY --from=build /usr/local/bin/ashgate /usr/local/bin/ashgate
USER ashgate:ashgate
WORKDIR /var/lib/ashgate
# SQLite files of the all-in-one default live here (mount a volume); a fleet uses PostgreSQL.
ENV PHOENIX_WORKING_DIR=/var/lib/ashgate
VOLUME ["/var/lib/ashgate"]
# gateway, OTLP gRPC, OTLP HTTP, identity gRPC, identity /metrics.
EXPOSE 6006 4317 4318 50051 50052
# SIGTERM starts a graceful shutdown (in-flight exports are committed and answered).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/ashgate"]
CMD ["serve"]
