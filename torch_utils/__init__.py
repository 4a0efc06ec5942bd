"""PyTorch helpers: persistent pickling, misc utilities, training statistics, distributed
setup, and the custom operations (torch_utils.ops)."""
