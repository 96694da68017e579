#!/usr/bin/env bash
# Reproduce the bundled tennis/badminton model from its public data, in one command:
#   scripts/pretrained/reproduce.sh TRACKNETV3_CHECKOUT BADMINTON_DIR [WORK]
# TRACKNETV3_CHECKOUT: a clone of github.com/MathisNcl/TrackNetV3 (raw_data/, raw_data2/);
# BADMINTON_DIR: the 33 rallies of alenzenx/TrackNetV3 raw_data/ (../shared/realdata/badminton-train).
# Lays out the data (links), trains the pretrained_fast profile from the bundled full-resolution model
# unet-fullres (the same parameter shapes; 70 minutes), recalibrates the threshold through the inference
# engine, writes the `badminton` file (the same weights with overlapping windows, recalibrated), and
# scores the held-out splits (docs/models/pretrained.md).
set -euo pipefail
tennis=${1:?a checkout of MathisNcl/TrackNetV3}; badminton=${2:?the badminton rallies folder}; work=${3:-runs/pretrained}
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-python}
model="$work/unet-fast-tennis.safetensors"
badminton_model="$work/unet-fast-badminton.safetensors"
"$py" "$here/build_data.py" --tennis "$tennis" --badminton "$badminton" --out "$work/data"
OMP_NUM_THREADS=1 "$py" -m tracknet_cli train --profile pretrained_fast --init-from unet-fullres \
    --set "data.root=$work/data/train" --set data.num_workers=1 --out "$work/run"
"$py" "$here/export.py" "$work/run" --data-root "$work/data/train" --out "$model" --precision fp32
"$py" "$here/export.py" "$work/run" --data-root "$work/data/train" --out "$badminton_model" --precision fp32 --inference-stride 1
"$py" -m tracknet_cli eval --checkpoint "$model" --data-root "$work/data/tennis-test" --split all --protocol tracknet
"$py" -m tracknet_cli eval --checkpoint "$badminton_model" --data-root "$work/data/train" --split test --protocol v2
