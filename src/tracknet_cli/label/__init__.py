"""`tracknet label`: a model-assisted labelling page for a video or a frame folder (docs/scripts/label.md).

The core (session, files, frames, proposals) needs no web stack; `server` and `service` need the
`label` extra (starlette, uvicorn), imported only when the command runs."""
