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

from tools import cli

#----------------------------------------------------------------------------

def check_port_free(host, port):
    """Fail with a clear message before loading anything if the address is taken."""
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError as err:
            raise click.ClickException(f'Cannot listen on {host}:{port} ({err.strerror}); pass --port with a free port, e.g. --port={port + 1}.')

#----------------------------------------------------------------------------

@click.command(cls=cli.Command)
@cli.network_option()
@click.option('--port', type=click.IntRange(1, 65535), default=8000, show_default=True, help='Port of the page')
@click.option('--host', default='127.0.0.1', show_default=True, help='Address to listen on (0.0.0.0: every interface, reachable by others)')
@cli.device_option
@cli.trust_option
def explorer_cmd(network_pkl, port, host, device, trust_pickle):
    """Serve a web page to explore a network snapshot (open the printed address in a browser)."""
    import uvicorn  # Imported here so that --help stays fast.
    from explorer_app.render import Renderer
    from explorer_app.server import create_app

    check_port_free(host, port)
    G = cli.load_network(network_pkl, device, trust_pickle)
    app = create_app(Renderer(G, device), title=f'Styleformer explorer: {network_pkl}', host=host)
    print(f'Explorer on {device}: open http://{host}:{port}/ in a browser (Ctrl+C stops it).', flush=True)
    uvicorn.run(app, host=host, port=port, log_level='warning')

#----------------------------------------------------------------------------

if __name__ == '__main__':
    explorer_cmd()  # pylint: disable=no-value-for-parameter
