"""Click glue shared by the command-line tools: the common options and the one place where
the ordinary exceptions of the tools' helpers (tools/arguments.py, tools/rendering.py) and the
safe loader (safe_load.LoadError, for every way a snapshot fails to open) become click errors
(one line, no traceback). The tools' logic lives in those modules."""

import contextlib

import click

from snapshot_io import safe_load
from tools import arguments, rendering

#----------------------------------------------------------------------------
# Turning library errors into click errors.

# What the library raises for bad input: a wrong value, an unreadable file, a rejected snapshot.
INPUT_ERRORS = (ValueError, OSError, safe_load.LoadError)


@contextlib.contextmanager
def input_errors(option=None):
    """Report INPUT_ERRORS raised in the block as a click error about `option` (or in general)."""
    try:
        yield
    except INPUT_ERRORS as err:
        if option is None:
            raise click.ClickException(str(err)) from err
        raise click.BadParameter(str(err), param_hint=option) from err


class Command(click.Command):
    """click.Command whose body reports the library's input errors in one line."""

    def invoke(self, ctx):
        with input_errors():
            return super().invoke(ctx)

#----------------------------------------------------------------------------
# Option callbacks: parse and check the value while click reads it.

MAX_RANGE_VALUES = 1_000_000  # Seeds or indices in one option.


def parse_range(ctx, param, value):
    """Seeds or indices like '0-7,100' -> [0, ..., 7, 100]; all >= 0."""
    del ctx
    if value is None:
        return None
    with input_errors(param.opts[0]):
        values = arguments.parse_range(value, MAX_RANGE_VALUES)
    if any(v < 0 for v in values):
        raise click.BadParameter(f'values must be >= 0, got {value}')
    return values


def parse_device(ctx, param, value):
    """torch.device of --device (default: CUDA when present, else the CPU)."""
    del ctx
    with input_errors(param.opts[0]):
        return arguments.default_device(value)

#----------------------------------------------------------------------------
# Steps every tool takes.

def load_network(network, device, trust=False):
    """G_ema of the snapshot at `network` (path, URL or model name), ready for inference. A
    snapshot that fails to open raises LoadError, whose message names it (Command reports it)."""
    print(f'Loading network from "{network}"...')
    return safe_load.open_snapshot(network, trust=trust)['G_ema'].eval().requires_grad_(False).to(device)


def make_labels(G, class_idx, num, device):
    """Label batch [num, c_dim] for --class."""
    with input_errors('--class'):
        return rendering.make_labels(G, class_idx, num, device)

#----------------------------------------------------------------------------
# Options shared by the tools.

def network_option(required=True):
    """--network: the snapshot to read (calc_metrics.py makes it optional)."""
    return click.option('--network', 'network_pkl', help='Network snapshot: path, URL or model name (docs/models.md)',
        required=required, metavar='PATH')

trust_option = click.option('--trust-pickle', is_flag=True, help='Load the snapshot with its own embedded code (only for files you trust)')
device_option = click.option('--device', callback=parse_device, help='torch device [default: cuda if available, else cpu]', metavar='DEVICE')
noise_option = click.option('--noise-mode', help='Noise mode', type=click.Choice(['const', 'random', 'none']), default='const', show_default=True)
trunc_option = click.option('--trunc', 'truncation_psi', type=float, help='Truncation psi', default=1, show_default=True)
class_option = click.option('--class', 'class_idx', type=int, help='Class label (conditional networks only)')

#----------------------------------------------------------------------------
