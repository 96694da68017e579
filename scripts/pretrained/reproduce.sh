#!/usr/bin/env bash
# Reproduce the bundled tennis/badminton model from its public data, in one command:
#   scripts/pretrained/reproduce.sh TRACKNETV3_CHECKOUT BADMINTON_DIR ALENZENX_RAW_DATA2 [WORK]
# TRACKNETV3_CHECKOUT: a clone of github.com/MathisNcl/TrackNetV3 (raw_data/, raw_data2/);
# BADMINTON_DIR: the 33 rallies of alenzenx/TrackNetV3 raw_data/ (../shared/realdata/badminton-train);
# ALENZENX_RAW_DATA2: raw_data2/ of a clone of github.com/alenzenx/TrackNetV3 (9 more rallies).
# Lays out the data (links), trains the pretrained_unet profile in two stages (70 minutes on tennis
# games 1-8 and 23 rallies, then 70 minutes more with the 9 extra rallies, from the first stage),
# recalibrates the threshold through the inference engine, and scores the held-out splits
# (docs/models/pretrained.md).
set -euo pipefail
tennis=${1:?a checkout of MathisNcl/TrackNetV3}; badminton=${2:?the badminton rallies folder}
extra=${3:?raw_data2/ of alenzenx/TrackNetV3}; work=${4:-runs/pretrained}
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-python}
model="$work/unet-tennis-badminton.safetensors"
"$py" "$here/build_data.py" --tennis "$tennis" --badminton "$badminton" --badminton-extra "$extra" --out "$work/data"
"$py" -m tracknet_cli train --profile pretrained_unet --set "data.root=$work/data/train" --set data.num_workers=1 --out "$work/stage1"
"$py" -m tracknet_cli train --profile pretrained_unet --init-from "$work/stage1" --set "data.root=$work/data/train-more" \
  --set data.num_workers=1 --set training.lr=0.001 --out "$work/stage2"
"$py" "$here/export.py" "$work/stage2" --data-root "$work/data/train-more" --out "$model" --precision auto
"$py" -m tracknet_cli eval --checkpoint "$model" --data-root "$work/data/tennis-test" --split all --protocol tracknet
"$py" -m tracknet_cli eval --checkpoint "$model" --data-root "$work/data/train" --split test --protocol v2
