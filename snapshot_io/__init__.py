"""Reading, converting and exporting network snapshots: the safe loader (safe_load, built on
the pickle reader safe_pickle), model names (model_zoo, models.json), safetensors (in
safe_load) and ONNX (onnx_export). Writing snapshots is training's (training/snapshot.py);
this package builds the classes of training/ and is never imported by it."""
