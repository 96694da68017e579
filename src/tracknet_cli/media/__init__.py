"""Reading frames and videos. `media.files`: which files are frames or videos and in which order,
shared by training data (data.clips) and prediction (predict.sources) so both see the same frames."""
