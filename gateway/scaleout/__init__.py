"""Scale-out on Celery (RabbitMQ): the database stays the source of truth.

A job row is committed with its asset (the outbox); the broker only carries wake-ups naming a
job id. `relay` hands new jobs to the broker and re-publishes any the broker lost; `tasks`
runs a woken job with the same claim, lease, heartbeat and fencing as the embedded runner
(`gateway.pipeline`); `routing` pins each job to a queue of a region its dataset's residency
allows; `kms` is the per-region key custody a worker's credential unlocks. Nothing here runs
unless `GATEWAY_BROKER_URL` is set: the embedded runner (`gateway.workers`) is the default.
"""
