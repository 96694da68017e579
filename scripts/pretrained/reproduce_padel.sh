#!/usr/bin/env bash
# Reproduce the bundled padel model from its public data, in one command:
#   scripts/pretrained/reproduce_padel.sh PADEL_CHECKOUT TRACKNETV3_CHECKOUT [WORK]
# PADEL_CHECKOUT: a clone of github.com/VictorUceda/TrackNet-Padel (its raw_data/points/clean only).
# TRACKNETV3_CHECKOUT: a clone of github.com/MathisNcl/TrackNetV3 (tennis games 1-8, rehearsed).
# Lays out the points by match and set and 26 tennis training clips (links), fine-tunes the bundled
# `tennis` model on both with the padel profile (40 minutes), recalibrates the threshold through the
# inference engine on the validation set, and scores the held-out points (docs/models/pretrained.md#padel).
set -euo pipefail
padel=${1:?a checkout of VictorUceda/TrackNet-Padel}; tennis=${2:?a checkout of MathisNcl/TrackNetV3}
work=${3:-runs/padel-model}
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-python}
model="$work/unet-fast-padel.safetensors"
"$py" "$here/build_data.py" --tennis "$tennis" --out "$work/pretrained"
"$py" "$here/padel_data.py" "$padel/raw_data/points/clean" --tennis "$work/pretrained/train/tennis" --out "$work/data"
OMP_NUM_THREADS=1 "$py" -m tracknet_cli train --profile padel --init-from tennis \
    --set "data.root=$work/data" --out "$work/run"
"$py" "$here/export.py" "$work/run" --data-root "$work/data" --out "$model" --precision fp32 --neutral-root data/padel \
    --inference-stride 1
"$py" -m tracknet_cli eval --checkpoint "$model" --data-root "$work/data" --split test --protocol v2
