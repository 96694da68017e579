"""Running a trained model: the engine (frames → windows → probabilities → points), checkpoints,
device and precision, run directories. Training's validation, `eval` and `predict` all use it;
`training` and `predict` import this package and never each other."""
