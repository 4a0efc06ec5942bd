"""Explore a generator in the browser: seeds, truncation, classes, noise, style mixing,
interpolation and attention maps, on a local web page (also on a headless server).

    python explorer.py --network=network-snapshot.pkl                  # then open http://127.0.0.1:8000/
    python explorer.py --network=PATH --port=8080 --device=cpu

On a remote machine, forward the port over ssh (ssh -L 8000:127.0.0.1:8000 HOST) and open
http://127.0.0.1:8000/ locally; see docs/explorer.md. Every image matches what generate.py,
style_mixing.py and attention_maps.py write for the same settings.
"""

import socket

import click
import torch

from training import safe_load

#----------------------------------------------------------------------------

def check_port_free(host, port):
    """Fail with a clear message before loading anything if the address is taken."""
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError as err:
            raise click.ClickException(f'Cannot listen on {host}:{port} ({err.strerror}); pass --port with a free port, e.g. --port={port + 1}.')

#----------------------------------------------------------------------------

@click.command()
@click.option('--network', 'network_pkl', help='Network snapshot: path or URL', required=True, metavar='PATH')
@click.option('--port', type=click.IntRange(1, 65535), default=8000, show_default=True, help='Port of the page')
@click.option('--host', default='127.0.0.1', show_default=True, help='Address to listen on (0.0.0.0: every interface, reachable by others)')
@click.option('--device', type=click.Choice(['cpu', 'cuda']), help='torch device [default: cuda if available, else cpu]')
@click.option('--trust-pickle', is_flag=True, help='Load the snapshot with its own embedded code (only for files you trust)')
def explorer_cmd(network_pkl, port, host, device, trust_pickle):
    """Serve a web page to explore a network snapshot (open the printed address in a browser)."""
    import uvicorn  # Imported here so that --help stays fast.
    from explorer_app.render import Renderer
    from explorer_app.server import create_app

    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if device == 'cuda' and not torch.cuda.is_available():
        raise click.UsageError('--device=cuda was asked for, but no CUDA device is available; use --device=cpu.')
    check_port_free(host, port)
    print(f'Loading network from "{network_pkl}"...')
    try:
        G = safe_load.load_generator(network_pkl, torch.device(device), trust=trust_pickle)
    except (safe_load.LoadError, OSError, ValueError) as err:
        raise click.ClickException(f'Cannot load --network={network_pkl}: {err}')
    app = create_app(Renderer(G, device), title=f'Styleformer explorer: {network_pkl}')
    print(f'Explorer on {device}: open http://{host}:{port}/ in a browser (Ctrl+C stops it).', flush=True)
    uvicorn.run(app, host=host, port=port, log_level='warning')

#----------------------------------------------------------------------------

if __name__ == '__main__':
    explorer_cmd()  # pylint: disable=no-value-for-parameter
