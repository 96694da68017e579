"""Backbones: Hugging Face feature extractors behind one contract (see `base.Backbone`)."""
