#!/usr/bin/env bash
# Reproduce the bundled tennis/badminton model from its public data, in one command:
#   scripts/pretrained/reproduce.sh TRACKNETV3_CHECKOUT BADMINTON_DIR [WORK]
# TRACKNETV3_CHECKOUT: a clone of github.com/MathisNcl/TrackNetV3 (raw_data/, raw_data2/);
# BADMINTON_DIR: the 33 rallies of alenzenx/TrackNetV3 raw_data/ (../shared/realdata/badminton-train).
# Lays out the data (links), trains the pretrained_unet profile (70 minutes), recalibrates the threshold
# through the inference engine, and scores the held-out splits (docs/models/pretrained.md).
set -euo pipefail
tennis=${1:?a checkout of MathisNcl/TrackNetV3}; badminton=${2:?the badminton rallies folder}; work=${3:-runs/pretrained}
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-python}
model="$work/unet-tennis-badminton.safetensors"
"$py" "$here/build_data.py" --tennis "$tennis" --badminton "$badminton" --out "$work/data"
"$py" -m tracknet_cli train --profile pretrained_unet --set "data.root=$work/data/train" --set data.num_workers=1 --out "$work/run"
"$py" "$here/export.py" "$work/run" --data-root "$work/data/train" --out "$model" --precision auto
"$py" -m tracknet_cli eval --checkpoint "$model" --data-root "$work/data/tennis-test" --split all --protocol tracknet
"$py" -m tracknet_cli eval --checkpoint "$model" --data-root "$work/data/train" --split test --protocol v2
