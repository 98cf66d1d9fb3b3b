# Sourced by build.sh and test.sh: create or update the virtual environment in .venv.
# Override the interpreter with PYTHON=/path/to/python3.11.
pip_quiet() {
  # pip's own progress is noise in logs; keep real errors.
  "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if command -v python3.11 >/dev/null 2>&1; then PY=python3.11; else PY=python3; fi
fi
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
start=$SECONDS
pip_quiet .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
pip_quiet .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
echo "environment ready in .venv ($((SECONDS - start)) s)"
export PATH="$PWD/.venv/bin:$PATH"
