"""The explorer's HTTP server: the page (static/) and a small JSON/PNG API over a Renderer.

    GET /                      the page
    GET /api/info              the network's shape: resolution, classes, num_ws, attention blocks
    GET /api/image.png         a view (seed, psi, class, noise, mix_seed, mix_styles)
    GET /api/interpolation.png a strip from the view's seed to seed_to (steps images)
    GET /api/attention.png     the view with the attention of pixel (x, y) in block/head over it

Bad settings, including parameters of the wrong type, answer 400 with {"detail": one-line message}. Each PNG answer carries the time it took to
render in the header X-Render-Seconds.
"""

import io
import os
import time

from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from explorer_app.render import View
from training.tools import parse_range, save_image

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'static')

#----------------------------------------------------------------------------

def png_bytes(image):
    """uint8 [H, W, C] with C = 1 or 3 -> PNG file contents."""
    buffer = io.BytesIO()
    save_image(image, buffer)
    return buffer.getvalue()


def view_params(seed: int = 0, psi: float = 1.0, class_idx: int = Query(None, alias='class'), noise: str = 'const',
                mix_seed: int = None, mix_styles: str = None):
    """The View of a request's query parameters (mix_styles as a range, e.g. 0-3)."""
    styles = ()
    if mix_seed is not None:
        try:
            styles = tuple(parse_range(mix_styles or ''))
        except ValueError as err:
            raise HTTPException(400, f'mix_styles: {err}')
    return View(seed=seed, psi=psi, class_idx=class_idx, noise_mode=noise, mix_seed=mix_seed, mix_styles=styles)


def png_response(render):
    """Run render() -> uint8 image; answer the PNG, or 400 with the message of a ValueError."""
    start = time.perf_counter()
    try:
        image = render()
    except ValueError as err:
        raise HTTPException(400, str(err))
    seconds = time.perf_counter() - start
    return Response(png_bytes(image), media_type='image/png', headers={'X-Render-Seconds': f'{seconds:.4f}'})


def create_app(renderer, title='Styleformer explorer'):
    """The FastAPI application serving `renderer`'s images and the page."""
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None)
    app.mount('/static', StaticFiles(directory=STATIC_DIR), name='static')

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(request, exc):  # pylint: disable=unused-argument
        # FastAPI's default is a 422 with a nested list; the page shows one line instead.
        problems = [f'{error["loc"][-1]}: {error["msg"]}' for error in exc.errors()]
        return JSONResponse({'detail': '; '.join(problems)}, status_code=400)

    @app.get('/', include_in_schema=False)
    def page():
        return FileResponse(os.path.join(STATIC_DIR, 'index.html'))

    @app.get('/api/info')
    def info():
        return dict(renderer.info(), title=title)

    @app.get('/api/image.png')
    def image(view: View = Depends(view_params)):
        return png_response(lambda: renderer.image(view))

    @app.get('/api/interpolation.png')
    def interpolation(view: View = Depends(view_params), seed_to: int = 1, steps: int = 8):
        return png_response(lambda: renderer.interpolation(view, seed_to, steps))

    @app.get('/api/attention.png')
    def attention(view: View = Depends(view_params), block: str = '', head: str = 'mean', x: int = 0, y: int = 0):
        if head != 'mean' and not head.isdigit():
            raise HTTPException(400, f'head must be "mean" or a head index; got {head!r}.')
        return png_response(lambda: renderer.attention(view, block, head if head == 'mean' else int(head), (x, y)))

    return app
