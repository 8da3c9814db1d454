#!/usr/bin/env bash
# af-lab developer entry point.
#
#   ./dev.sh demo    set everything up, start the demo facility + JupyterLab (Ctrl-C stops all)
#   ./dev.sh test    set everything up, run the whole test suite (Python, TypeScript, Galata)
#   ./dev.sh setup   only install / build (idempotent: a second run reuses what is there)
#
# Needs: Python 3.11, Node 20, root (for apt), the package registries. Nothing else.
set -euo pipefail
cd "$(dirname "$0")"
REPO=$PWD
PY=${PYTHON:-python3}
VENV=$REPO/.venv
RUCIO_VENV=$REPO/.venv-rucio-server
ANALYSIS_VENV=$REPO/.venv-analysis
STAMPS=$REPO/.stamps
mkdir -p "$STAMPS"

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
export PIP_DISABLE_PIP_VERSION_CHECK=1

# yarn's download cache outlives the clone (CI clones afresh on the same machine).
export YARN_GLOBAL_FOLDER=${XDG_CACHE_HOME:-$HOME/.cache}/af-lab/yarn
export AF_RUCIO_SERVER_VENV=$RUCIO_VENV

step() { printf '\n==> %s\n' "$*"; }
elapsed() { echo "    ($(( $(date +%s) - $1 )) s)"; }
hash_of() { cat "$@" | sha256sum | cut -c1-16; }
pip_q() { "$@" 2>&1 | grep -v -E "^WARNING: Location .* is ignored" || [ "${PIPESTATUS[0]}" -eq 0 ]; }

apt_packages() {
  local want=(chromium memcached postgresql xrootd-server xrootd-client slurm-wlm munge) missing=()
  for p in "${want[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  step "apt-get install ${missing[*]}"
  local t=$(date +%s)
  if [ "$(id -u)" -ne 0 ]; then echo "need root to install ${missing[*]}" >&2; return 1; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  elapsed "$t"
}

python_env() {
  local stamp=$STAMPS/venv key
  key=$(hash_of pyproject.toml)
  if [ ! -x "$VENV/bin/python" ]; then
    step "create $VENV"; "$PY" -m venv "$VENV"
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$key" ]; then
    step "pip install (build tools + af-lab dependencies)"
    local t=$(date +%s)
    pip_q "$VENV/bin/pip" install -q --upgrade pip
    pip_q "$VENV/bin/pip" install -q hatchling hatch-jupyter-builder hatch-nodejs-version editables 'jupyterlab>=4.6,<5'
    # Dependencies first (from pyproject), the editable build of af-lab itself later (needs node_modules).
    pip_q "$VENV/bin/python" - <<'EOF'
import subprocess, sys, tomllib
meta = tomllib.load(open("pyproject.toml", "rb"))["project"]
deps = list(meta["dependencies"]) + [d for d in meta["optional-dependencies"]["dev"] if not d.startswith("af_lab")]
deps += meta["optional-dependencies"]["xrootd"]
subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", *deps])
EOF
    echo "$key" > "$stamp"
    elapsed "$t"
  fi
}

rucio_server_env() {
  local stamp=$STAMPS/rucio-server key="rucio==41.5.1 gunicorn psycopg[binary]|v2"
  [ -x "$RUCIO_VENV/bin/gunicorn" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$key" ] && return 0
  # Rucio's server package must not share a venv with rucio-clients (it pins urllib3 and overlaps its files).
  step "Rucio server venv $RUCIO_VENV"
  local t=$(date +%s)
  [ -x "$RUCIO_VENV/bin/python" ] || "$PY" -m venv "$RUCIO_VENV"
  pip_q "$RUCIO_VENV/bin/pip" install -q 'rucio==41.5.1' gunicorn 'psycopg[binary]' 
  echo "$key" > "$stamp"
  elapsed "$t"
}

analysis_env() {
  # The "AF analysis" kernel and cluster environment: the stack of requirements-analysis.txt.
  local stamp=$STAMPS/analysis key
  key=$(hash_of requirements-analysis.txt)
  if [ ! -x "$ANALYSIS_VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$key" ]; then
    step "analysis venv $ANALYSIS_VENV (uproot, coffea, ROOT, dask-awkward...)"
    local t=$(date +%s)
    [ -x "$ANALYSIS_VENV/bin/python" ] || "$PY" -m venv "$ANALYSIS_VENV"
    pip_q "$ANALYSIS_VENV/bin/pip" install -q -r requirements-analysis.txt
    echo "$key" > "$stamp"
    elapsed "$t"
  fi
  # af-lab's kernel side (magics, FacilityClient) without af-lab's server dependencies and
  # without the repository root on sys.path: a .pth names a folder holding only a link to
  # the af_lab package, so `import af_lab` works and `coverage/`, `tests/`... do not shadow.
  local site pkgdir=$ANALYSIS_VENV/af-lab-kernel
  site=$("$ANALYSIS_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
  mkdir -p "$pkgdir"
  ln -sfn "$REPO/af_lab" "$pkgdir/af_lab"
  echo "$pkgdir" > "$site/af_lab_kernel.pth"
}

kernelspec() {
  # Into the server venv's data dir: every Jupyter server of .venv (demo, tests) lists it.
  local spec=$VENV/share/jupyter/kernels/af-analysis
  if [ ! -f "$spec/kernel.json" ] || ! grep -q "$ANALYSIS_VENV/bin/python" "$spec/kernel.json"; then
    "$ANALYSIS_VENV/bin/python" -m ipykernel install --prefix "$VENV" --name af-analysis --display-name "AF analysis" >/dev/null 2>&1
  fi
}

node_env() {
  # shellcheck disable=SC1091
  . "$VENV/bin/activate"
  local key
  key=$(hash_of package.json yarn.lock)
  if [ ! -d node_modules ] || [ "$(cat "$STAMPS/node" 2>/dev/null)" != "$key" ]; then
    step "jlpm install"
    local t=$(date +%s)
    jlpm install --immutable
    echo "$key" > "$STAMPS/node"
    elapsed "$t"
  fi
  key=$(hash_of ui-tests/package.json ui-tests/yarn.lock)
  if [ ! -d ui-tests/node_modules ] || [ "$(cat "$STAMPS/ui-node" 2>/dev/null)" != "$key" ]; then
    step "jlpm install (ui-tests)"
    local t=$(date +%s)
    (cd ui-tests && jlpm install --immutable)
    echo "$key" > "$STAMPS/ui-node"
    elapsed "$t"
  fi
}

build_extension() {
  . "$VENV/bin/activate"
  local key
  key=$(find pyproject.toml package.json tsconfig.json schema style src -type f -print0 | sort -z \
        | xargs -0 sha256sum | sha256sum | cut -c1-16)
  if [ "$(cat "$STAMPS/build" 2>/dev/null)" != "$key" ] || [ ! -f af_lab/labextension/package.json ] \
     || ! "$VENV/bin/python" -c 'import af_lab._version' 2>/dev/null; then
    step "build the extension (tsc + labextension) and install af-lab editable"
    local t=$(date +%s)
    jlpm build
    pip_q "$VENV/bin/pip" install -q --no-build-isolation --no-deps -e .
    jupyter labextension develop --overwrite . >/dev/null
    echo "$key" > "$STAMPS/build"
    elapsed "$t"
  fi
}

setup() {
  local t0=$(date +%s)
  apt_packages
  # The two venvs are independent downloads: build them side by side.
  local rucio_log=$STAMPS/rucio-server.log rucio_pid analysis_log=$STAMPS/analysis.log analysis_pid
  rucio_server_env >"$rucio_log" 2>&1 & rucio_pid=$!
  analysis_env >"$analysis_log" 2>&1 & analysis_pid=$!
  python_env
  if ! wait "$rucio_pid"; then cat "$rucio_log"; return 1; fi
  cat "$rucio_log"
  node_env
  build_extension
  if ! wait "$analysis_pid"; then cat "$analysis_log"; return 1; fi
  cat "$analysis_log"
  kernelspec
  echo "setup done in $(( $(date +%s) - t0 )) s"
}

run_tests() {
  . "$VENV/bin/activate"
  local t0=$(date +%s) status=0
  step "extension checks"
  jupyter labextension list 2>&1 | grep -E "af-lab .*enabled.*OK"
  jupyter server extension list 2>&1 | grep -E "af_lab .*OK"
  step "lint (ruff, eslint/prettier)"
  ruff check .
  jlpm lint:check
  step "TypeScript unit tests (jest)"
  jlpm test
  step "Python tests (pytest, real services on 127.0.0.1)"
  python -m pytest -ra --durations=15 "${PYTEST_ARGS[@]}" || status=$?
  step "UI tests (Galata, Debian chromium) against the facility"
  ui_tests || status=$?
  echo "test run took $(( $(date +%s) - t0 )) s"
  return $status
}

ui_tests() {
  local dir=$REPO/.facility-ui rc=0
  # Mount views of the last run are immutable (chattr +i, af-lab running as root): clear that first.
  [ -d "$dir" ] && { chattr -R -i "$dir" 2>/dev/null || true; }
  rm -rf "$dir"; mkdir -p "$dir"; chmod 755 "$dir"
  AF_DEMO_BIG_FILES=${AF_UI_BIG_FILES:-2000} python -m af_facility --dir "$dir" up || { python -m af_facility --dir "$dir" down; return 1; }
  python - "$dir" <<'EOF'
import json, sys
from pathlib import Path
from af_facility.base import FacilityState
from af_facility.lab import aflab_config, seed_rucio_password
state = FacilityState.load(Path(sys.argv[1]))
seed_rucio_password(state)
(Path(sys.argv[1]) / "ui-config.json").write_text(json.dumps(aflab_config(state)))
EOF
  (cd ui-tests && AF_LAB_UI_EXTRA_CONFIG=$dir/ui-config.json AF_LAB_EXPECT_CONNECTED=1 CI=1 jlpm playwright test) || rc=$?
  python -m af_facility --dir "$dir" down
  return $rc
}

cmd=${1:-}
shift || true
PYTEST_ARGS=("$@")
case "$cmd" in
  setup) setup ;;
  test) setup; run_tests ;;
  demo)
    setup
    . "$VENV/bin/activate"
    mkdir -p .facility && chmod 755 .facility
    exec python -m af_facility --dir .facility up --lab --wait ;;
  *) sed -n '2,8p' "$0"; exit 2 ;;
esac
