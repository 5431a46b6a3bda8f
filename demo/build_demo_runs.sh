#!/usr/bin/env bash
# Rebuild explorer/demo_runs (shipped as package data): the shapes-demo presets trained and
# analysed by this package on the CPU (about 35 minutes on 2 cores): the spectral loss, SimCLR and
# SimSiam on views drawn from the exact augmentation graph, and the spectral loss with image-space
# augmentation; then the sweep shapes-class-change (class_change_p = 0, 0.05, 0.1, 0.2, 0.3,
# 0.6, 0.9: classes
# only approximately disconnected, issue 17), whose manifest .sweeps/shapes-class-change.json
# the Sweeps page reads. The spectral run keeps its weights, so the dashboard can find nearest
# neighbours; the others keep their curves, probes and analyses only, to keep the repository small.
# Usage: bash demo/build_demo_runs.sh [PYTHON]
set -euo pipefail
PYTHON=${1:-.venv/bin/python}
OUT=explorer/demo_runs
BUILD=$(mktemp -d)
for pair in shapes-demo:shapes-spectral shapes-demo-simclr:shapes-simclr \
        shapes-demo-simsiam:shapes-simsiam shapes-demo-image:shapes-image; do
    "$PYTHON" -m explorer train --preset "${pair%%:*}" --name "${pair##*:}" --runs-dir "$BUILD" \
        --no-progress
done
"$PYTHON" -m explorer sweep --preset shapes-demo --name shapes-class-change \
    class_change_p=0,0.05,0.1,0.2,0.3,0.6,0.9 --runs-dir "$BUILD" --no-progress
for run in "$BUILD"/*/; do
    rm -f "$run/checkpoints/resume.pt" "$run/.lock"  # finished runs do not resume
    case "$run" in
        */shapes-spectral/) ;;
        *) rm -f "$run"/checkpoints/*.safetensors ;;
    esac
done
rm -rf "$OUT" && mkdir -p "$(dirname "$OUT")" && mv "$BUILD" "$OUT"
du -sh "$OUT"/*
