#!/usr/bin/env bash
# Reproduce the bundled padel model from its public data, in one command:
#   scripts/pretrained/reproduce_padel.sh PADEL_CHECKOUT [WORK]
# PADEL_CHECKOUT: a clone of github.com/VictorUceda/TrackNet-Padel (its raw_data/points/clean only).
# Lays out the points by match and set (links), fine-tunes the bundled `tennis` model with the padel
# profile (40 minutes), recalibrates the threshold through the inference engine on the validation set,
# and scores the held-out points (docs/models/pretrained.md#padel).
set -euo pipefail
padel=${1:?a checkout of VictorUceda/TrackNet-Padel}; work=${2:-runs/padel-model}
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-python}
model="$work/unet-fast-padel.safetensors"
"$py" "$here/padel_data.py" "$padel/raw_data/points/clean" --out "$work/data"
OMP_NUM_THREADS=1 "$py" -m tracknet_cli train --profile padel --init-from tennis \
    --set "data.root=$work/data" --out "$work/run"
"$py" "$here/export.py" "$work/run" --data-root "$work/data" --out "$model" --precision fp32 --neutral-root data/padel
"$py" -m tracknet_cli eval --checkpoint "$model" --data-root "$work/data" --split test --protocol v2
