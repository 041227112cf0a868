# syntax=docker/dockerfile:1
#
# The reference server (`saas-server`) in a small image. Build: `docker build -t saas-server .`
# Run: see docs/deploy.md and docker-compose.yml. The entry point is the binary, so any
# command can be given: `docker run --rm saas-server openapi`, `... migrate`, `... worker`.

# ---- build -------------------------------------------------------------------------------
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# The cargo registry and the target folder are cache mounts (BuildKit): after a code change
# only the changed crates compile again. The target folder is not part of the image, so the
# binary is copied out in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p saas-server \
    && cp target/release/saas-server /usr/local/bin/saas-server

# ---- runtime -----------------------------------------------------------------------------
FROM debian:bookworm-slim
# ca-certificates: TLS to Stripe, FCM, APNs, SMTP and managed databases.
# curl: the health check below.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 saas \
    && useradd --system --uid 10001 --gid saas --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin saas \
    && mkdir /app \
    && chown saas:saas /app
COPY --from=build /usr/local/bin/saas-server /usr/local/bin/saas-server

# /app is the working folder and writable by the service user: relative paths in the
# configuration (the SQLite default `sqlite://data/app.db`, `EMAIL_FILE_PATH`, key files)
# resolve here.
WORKDIR /app
USER 10001:10001

# The server listens on 127.0.0.1:8080 unless told otherwise; in a container it must listen
# on every interface. The port here, in EXPOSE and in the health check go together.
ENV BIND_ADDR=0.0.0.0:8080
EXPOSE 8080

# /health/ checks the database, Redis (when configured) and the job store: 200 when they
# answer, 503 when one does not. Only `serve` listens; the compose file turns this check
# off for `migrate`, `worker` and `scheduler`.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD curl -fsS -o /dev/null --max-time 4 http://127.0.0.1:8080/health/ || exit 1

# SIGTERM (docker stop) reaches the binary directly: `serve` stops accepting, finishes
# in-flight requests and closes its sockets; `worker` waits up to 30 s for running jobs.
ENTRYPOINT ["saas-server"]
CMD ["serve", "--no-worker"]
