#!/usr/bin/env bash
# Rebuild demo/runs: the shapes-demo presets (spectral, SimCLR, SimSiam) trained and analysed by
# this package on the CPU (about 10 minutes on 2 cores). The spectral run keeps its weights, so
# the dashboard can find nearest neighbours; the comparison runs keep their curves, probes and
# analyses only, to keep the repository small. Usage: bash demo/build_demo_runs.sh [PYTHON]
set -euo pipefail
PYTHON=${1:-.venv/bin/python}
OUT=demo/runs
BUILD=$(mktemp -d)
for preset in shapes-demo shapes-demo-simclr shapes-demo-simsiam; do
    name=${preset/shapes-demo/shapes-spectral}
    name=${name/spectral-/}
    "$PYTHON" -m explorer train --preset "$preset" --name "$name" --runs-dir "$BUILD" --no-progress
done
for run in "$BUILD"/*/; do
    rm -f "$run/checkpoints/resume.pt"  # finished runs do not resume
    case "$run" in
        */shapes-spectral/) ;;
        *) rm -f "$run"/checkpoints/*.safetensors ;;
    esac
done
rm -rf "$OUT" && mkdir -p "$(dirname "$OUT")" && mv "$BUILD" "$OUT"
du -sh "$OUT"/*
