# syntax=docker/dockerfile:1
#
# casapay container image.
#
#   docker build -t casapay .
#   docker run --rm -p 8080:8080 casapay                  # embedded SQLite in /data
#   docker run --rm -p 8080:8080 -e DATABASE_URL=postgres://... casapay
#
# Needs BuildKit (the default builder since Docker 23) for the cache mounts.

# ---------------------------------------------------------------------------
# Builder
# ---------------------------------------------------------------------------
FROM rust:1.95-slim-bookworm AS builder

WORKDIR /src

# The slim Rust image already ships gcc and libc6-dev, which is all the bundled
# libsqlite3 needs; sqlx is built without TLS, so no OpenSSL either.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# Embedded at compile time by sqlx::migrate!("./migrations/{postgres,sqlite}").
COPY migrations ./migrations

# The registry and target dir live in cache mounts, which are not part of the
# image layer, so the binary is copied out to /out before the RUN ends.
RUN --mount=type=cache,id=casapay-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=casapay-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=casapay-target,target=/src/target,sharing=locked \
    cargo build --release --locked --bin casapay \
    && install -D -m 0755 target/release/casapay /out/casapay

# ---------------------------------------------------------------------------
# Runtime
# ---------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

# ca-certificates only, for outbound TLS. Not version-pinned (DL3008): Debian
# security updates replace point versions in bookworm, so a pin would soon stop
# resolving and break the build; the base image tag is the pin.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 casapay \
    && useradd --system --no-log-init --no-create-home --uid 10001 --gid casapay \
        --home-dir /data --shell /usr/sbin/nologin casapay \
    && mkdir -p /data \
    && chown casapay:casapay /data

COPY --from=builder /out/casapay /usr/local/bin/casapay

# DATABASE_URL unset means the embedded SQLite file /data/casapay.db; set it to a
# postgres:// URL to use PostgreSQL instead (see compose.yaml). Mount a volume on
# /data to keep the SQLite database across containers.
ENV CASAPAY_LISTEN=0.0.0.0:8080 \
    CASAPAY_DATA=/data

WORKDIR /data
EXPOSE 8080
# Numeric so the host and Kubernetes' runAsNonRoot can check it (user casapay).
USER 10001:10001

# No HEALTHCHECK: the image has no curl/wget (only ca-certificates is installed)
# and casapay has no self-check subcommand, so there is nothing to run. Probe
# GET /healthz (or /readyz, which also checks the store) from the
# orchestrator instead.

ENTRYPOINT ["/usr/local/bin/casapay"]
CMD ["serve"]
