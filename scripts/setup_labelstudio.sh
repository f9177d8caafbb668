#!/usr/bin/env bash
# The Label Studio server in its own virtual environment (.venv-labelstudio): `label-studio`
# pins its own Django and SDK versions, so it never shares the project's environment.
# Idempotent: a stamp file records the pins it was built from. The tests' Label Studio fixture
# and `privacy-gateway demo --labelstudio` start the server from here.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
VENV=.venv-labelstudio
PINS=deploy/labelstudio-constraints.txt

stamp=$VENV/.setup-$(cat "$PINS" scripts/setup_labelstudio.sh | sha256sum | cut -c1-16)
if [ -f "$stamp" ]; then
  echo "Label Studio environment is up to date ($VENV)"
  exit 0
fi
started=$(date +%s)
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/pip" install -q -c "$PINS" label-studio
"$VENV/bin/python" -c "import label_studio; assert label_studio.__version__ == '1.23.2'"
# A migrated, empty data directory (no user, no project): the test fixture and the demo copy
# it instead of migrating for ~50 s each time. Offline flags: no analytics, no version check.
rm -rf "$VENV/template-data"
env -u USERNAME -u PASSWORD -u PORT -u HOST -u DEBUG \
  LABEL_STUDIO_BASE_DATA_DIR="$PWD/$VENV/template-data" COLLECT_ANALYTICS=false \
  LATEST_VERSION_CHECK=false SENTRY_DSN= FRONTEND_SENTRY_DSN= \
  "$VENV/bin/label-studio" init --quiet --no-browser >"$VENV/template-init.log" 2>&1
rm -f "$VENV"/.setup-*
touch "$stamp"
echo "Label Studio set-up complete ($VENV, $(($(date +%s) - started)) s)"
