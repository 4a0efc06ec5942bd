"""The browser explorer behind explorer.py: `render` computes the images of a generator the way
the command-line tools do, `server` serves them and the page in `static/` over HTTP."""
