#!/usr/bin/env bash
# Install everything into .venv and build the site from the committed notebook outputs.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
start=$SECONDS
jupyter-book build . --warningiserror --nitpick --keep-going
echo "site built in $((SECONDS - start)) s: open $PWD/_build/html/index.html"
