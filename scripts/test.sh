#!/usr/bin/env bash
# Install everything into .venv and run every test: the package's unit tests, the lab
# generator and checks, the Colab path, the site and a browser check of it, the widgets and
# lab checks driven in JupyterLab through a browser, and nbval on every chapter and solution
# notebook. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

# Headless Chromium and its driver for the page checks, and a Korean font so the glossary's
# Korean terms render in screenshots (Debian/Ubuntu packages).
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1 \
   || ! fc-list 2>/dev/null | grep -qi nanum; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium, chromium-driver and fonts-nanum"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-nanum >/dev/null
  else
    echo "chromium/chromedriver/fonts-nanum missing: the browser test will be skipped or show boxes for Korean"
  fi
fi

# Wheels for the Colab test (tests/test_colab.py), which builds a fresh Colab-like environment
# offline from .cache/wheelhouse: Colab's preinstalled set, the course package's dependencies
# and build backend (from pyproject.toml, resolved against those pins). Nothing is fetched when
# the folder already holds all of it.
mkdir -p .cache/wheelhouse
.venv/bin/python - > .cache/colab-package-requirements.txt <<'PY'
import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))
print(*project["project"]["dependencies"], *project["build-system"]["requires"], "wheel", sep="\n")
PY
colab_wheels=(-d .cache/wheelhouse -r tests/colab_preinstalled.txt -r .cache/colab-package-requirements.txt)
if ! PIP_FIND_LINKS=.cache/wheelhouse .venv/bin/python -m pip download --quiet --no-index \
     "${colab_wheels[@]}" >/dev/null 2>&1; then
  echo "filling .cache/wheelhouse for the Colab test"
  pip_quiet .venv/bin/python -m pip download --quiet "${colab_wheels[@]}"
fi

# Datasets come from the local mirror beside the checkout, never from the network.
if [ -z "${DLCOURSE_DATA:-}" ] && [ -d ../shared/data ]; then
  export DLCOURSE_DATA="$(cd ../shared/data && pwd)"
fi
# With arguments, one pytest run with them (for example a single test file or notebook).
if [ $# -gt 0 ]; then
  exec python -m pytest "$@"
fi

# Otherwise two runs. Every notebook runs its model on one PyTorch thread (dlcourse.setup), so
# two notebooks at a time fill a 2-core machine: the second run spreads the notebooks, the
# Colab test and the JupyterLab test over DLCOURSE_TEST_WORKERS processes (pytest-xdist, default 2; --dist loadscope keeps
# each notebook's cells, and the Colab test's shared environment, in one process). The first
# run goes one test at a time: the unit, lab, site and browser tests, and the notebooks that
# time things and assert on the timings (chapter 4's speed-ups, 1.2's backward/forward ratio,
# 7.2's and 7.3's output-layer costs), which a second busy process would disturb.
TIMED_NOTEBOOKS=(chapters/ch04_large_scale chapters/ch01_deep_networks/02_backprop.ipynb
                 chapters/ch07_natural_language/02_neural_language_model.ipynb
                 chapters/ch07_natural_language/03_high_dimensional_outputs.ipynb)
ignore_timed=()
for path in "${TIMED_NOTEBOOKS[@]}"; do ignore_timed+=("--ignore=$path"); done
start=$SECONDS
status=0
python -m pytest tests --ignore=tests/test_colab.py --ignore=tests/test_jupyterlab.py "${TIMED_NOTEBOOKS[@]}" \
  || status=$?
python -m pytest -n "${DLCOURSE_TEST_WORKERS:-2}" --dist loadscope tests/test_colab.py tests/test_jupyterlab.py \
  chapters solutions \
  "${ignore_timed[@]}" || status=$?
echo "both test runs: $((SECONDS - start)) s, exit status $status"
exit $status
