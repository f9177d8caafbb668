#!/bin/sh
# Container entry point.  serve (default): `privacy-gateway init` (idempotent: data directory,
# master key check, schema), then the API and its job workers on 0.0.0.0:8000.  worker: the
# job workers only, with /health/ready and /metrics on port 8000 (with a broker: a Celery
# worker, e.g. `worker --region eu-de --queues gateway.eu-de`).  scheduler: the one scheduler
# of periodic work when a broker is set.  Anything else runs as given (e.g. `privacy-gateway
# verify`).
set -eu

# The database password comes from a secret file, never from the URL in the environment:
# libpq (psycopg) reads PGPASSWORD when GATEWAY_DATABASE_URL carries no password.
if [ -n "${GATEWAY_DATABASE_PASSWORD_FILE:-}" ]; then
  PGPASSWORD=$(cat "$GATEWAY_DATABASE_PASSWORD_FILE")
  export PGPASSWORD
fi
# The broker URL carries the RabbitMQ password: it comes from a secret file too.
if [ -n "${GATEWAY_BROKER_URL_FILE:-}" ]; then
  GATEWAY_BROKER_URL=$(cat "$GATEWAY_BROKER_URL_FILE")
  export GATEWAY_BROKER_URL
fi
# The key-service credential names this process's region: from its region's secret file.
if [ -n "${GATEWAY_KMS_CREDENTIAL_FILE:-}" ]; then
  GATEWAY_KMS_CREDENTIAL=$(cat "$GATEWAY_KMS_CREDENTIAL_FILE")
  export GATEWAY_KMS_CREDENTIAL
fi

case "${1:-serve}" in
  serve)
    if [ "$#" -gt 0 ]; then shift; fi
    privacy-gateway init
    exec privacy-gateway serve --host 0.0.0.0 --port 8000 "$@"
    ;;
  worker)
    if [ "$#" -gt 0 ]; then shift; fi
    # embedded: prepares its data directory; with a broker the API's init owns the schema
    if [ -z "${GATEWAY_BROKER_URL:-}" ]; then privacy-gateway init; fi
    exec privacy-gateway worker --host 0.0.0.0 --port 8000 "$@"
    ;;
  scheduler)
    shift
    exec privacy-gateway scheduler "$@"
    ;;
  *)
    exec "$@"
    ;;
esac
