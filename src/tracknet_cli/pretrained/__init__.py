"""Ready models: trained ball trackers shipped inside the package, and how a checkpoint name resolves.

This folder is package data as well as code: ``catalogue.yaml`` names each bundled model (file,
sport, data source, held-out metrics, training machine and time) and the ``*.safetensors`` files
beside it are the models themselves (each a normal TrackNet checkpoint with its config and
calibrated threshold embedded). ``catalogue.py`` reads it (and the catalogues of the folders in
``$TRACKNET_MODELS_DIR``); ``resolve.py`` turns what a user gives ``--checkpoint``/``--init-from``
into one file. Importing this package imports neither torch nor huggingface_hub.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
CATALOGUE_FILE = "catalogue.yaml"
MODELS_DIR_ENV = "TRACKNET_MODELS_DIR"
