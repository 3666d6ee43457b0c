# Premise as a container. Multi-stage: cargo-chef builds the dependencies in a layer of their
# own, cached until Cargo.toml or Cargo.lock change; the runtime image holds only the binary,
# CA certificates (HTTPS webhooks, the Cloud API) and curl for the health check, and runs as
# an unprivileged user. Configure it with PREMISE_* environment variables (see
# config/default.toml and the README's "Deployment" section).

ARG RUST_VERSION=1.88
ARG RUNTIME_BASE=debian:bookworm-slim

FROM rust:${RUST_VERSION}-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.71
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json --bin premise
COPY . .
RUN cargo build --release --locked --bin premise \
    && install -D -m 0755 target/release/premise /out/premise

# The runtime's base; a test that builds the image offline passes a base of its own making
# under another name (--build-arg RUNTIME_BASE=...), so it never shadows the real one.
FROM ${RUNTIME_BASE} AS runtime
# Unpinned on purpose: the security updates of the Debian release are what we want here.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 premise \
    && useradd --system --uid 10001 --gid premise --home-dir /var/lib/premise --create-home premise \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/premise/data
COPY --from=builder /out/premise /usr/local/bin/premise
USER 10001:10001
WORKDIR /var/lib/premise
# The embedded SQLite database (sqlite://data/premise.db, relative to the working directory).
# A named volume mounted here starts as this directory: owned by the premise user.
VOLUME ["/var/lib/premise/data"]
ENV PREMISE_LISTEN=0.0.0.0:8080 \
    PREMISE_LOG__FORMAT=json \
    PREMISE_HEALTHCHECK_URL=http://127.0.0.1:8080/readyz
EXPOSE 8080
# /readyz fails while the database is unreachable and as soon as a drain starts. With TLS on,
# set PREMISE_HEALTHCHECK_URL to https://127.0.0.1:8080/readyz (-k accepts the certificate).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["sh", "-c", "curl -fsSk \"$PREMISE_HEALTHCHECK_URL\" > /dev/null || exit 1"]
# SIGTERM starts the graceful drain; keep `stop_grace_period` above the drain delay plus the
# shutdown timeout.
STOPSIGNAL SIGTERM
ENTRYPOINT ["premise"]
CMD ["serve"]
