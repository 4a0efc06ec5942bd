"""Small, framework-independent helpers used across the repository (see dnnlib.util)."""

from .util import EasyDict, Logger, make_cache_dir_path, open_url
