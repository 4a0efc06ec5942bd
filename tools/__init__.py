"""What the command-line tools (generate.py, style_mixing.py, gen_video.py, attention_maps.py,
projector.py, calc_metrics.py, legacy.py, explorer.py) share: click options and error
reporting (cli), argument parsing (arguments), rendering (rendering) and the attention
heat maps (attention_overlay). Scripts import these modules, never another script."""
