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
import ipaddress
import os
import time

from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from explorer_app.render import View
from tools.arguments import parse_range
from training.images import save_image

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'static')
MAX_STYLES = 256  # Indices in mix_styles (a network has a few dozen w's).

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
            styles = tuple(parse_range(mix_styles or '', MAX_STYLES))
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


def host_allowed(host_header, bound_host):
    """Whether a request's Host header names this server: an IP address, localhost, or the
    host it listens on. Any other name may be a web page's own domain re-pointed at this
    machine (DNS rebinding), which would let that page read the answers."""
    host = host_header.rsplit(':', 1)[0] if host_header.count(':') == 1 else host_header  # Without the port.
    host = host.removeprefix('[').partition(']')[0] if host.startswith('[') else host
    if host.lower() in ('localhost', bound_host.lower()):
        return True
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def create_app(renderer, title='Styleformer explorer', host='127.0.0.1'):
    """The FastAPI application serving `renderer`'s images and the page, to requests for `host`
    (the address it listens on) or an IP address or localhost."""
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None)
    app.mount('/static', StaticFiles(directory=STATIC_DIR), name='static')

    @app.middleware('http')
    async def check_host(request, call_next):
        if not host_allowed(request.headers.get('host', ''), host):
            return JSONResponse({'detail': 'The Host header does not name this server; open it by its address, '
                f'e.g. http://127.0.0.1:PORT/ or http://{host}:PORT/.'}, status_code=400)
        return await call_next(request)

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
