"""Convert network snapshots (published Styleformer / StyleGAN2-ADA, or ours) into snapshots of
this codebase, optionally as safetensors. Reading goes through the safe loader
(`snapshot_io.safe_load`), which runs nothing from the file.

    python legacy.py --source=published.pkl --dest=ours.pkl [--safetensors]
    python legacy.py --source=published.pkl --dest=ours.safetensors

`legacy.load_network_pkl` stays importable for scripts written against the published code.
"""

import os
import pickle

import click

from dnnlib.util import atomic_write
from snapshot_io import onnx_export
from snapshot_io.safe_load import LoadError, load_network_pkl, open_snapshot, save_safetensors  # pylint: disable=unused-import
from tools import cli

#----------------------------------------------------------------------------

@click.command(cls=cli.Command)
@click.option('--source', help='Input snapshot: path, URL or model name (docs/models.md)', required=True, metavar='PATH')
@click.option('--dest', help='Output file: .pkl (our snapshot), .safetensors (+ .json) or .onnx (G_ema)', required=True, metavar='PATH')
@click.option('--safetensors', 'also_safetensors', is_flag=True, help='With a .pkl --dest, also write DEST.safetensors + DEST.json')
@click.option('--force-fp16', help='Rebuild the networks for fp16 inference', is_flag=True)
@cli.trust_option
@click.option('--onnx-batch', type=click.IntRange(min=1), default=1, show_default=True, help='.onnx: the fixed batch size N')
@click.option('--onnx-dynamic-batch', is_flag=True, help='.onnx: let the batch size N vary')
@click.option('--onnx-trunc', default='1', show_default=True, metavar='PSI|input', help='.onnx: truncation psi fixed in the graph, or "input"')
def convert_network_pickle(source, dest, also_safetensors, force_fp16, trust_pickle, onnx_batch, onnx_dynamic_batch, onnx_trunc):
    """Rewrite a published Styleformer / StyleGAN2-ADA snapshot as one of this codebase.

    \b
    python legacy.py --source=published.pkl --dest=ours.pkl
    python legacy.py --source=published.pkl --dest=ours.safetensors
    python legacy.py --source=published.pkl --dest=g.onnx --onnx-dynamic-batch --onnx-trunc=input
    """
    ctx = click.get_current_context()
    onnx_options = [f'--{name.replace("_", "-")}' for name in ['onnx_batch', 'onnx_dynamic_batch', 'onnx_trunc']
        if ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT]
    if onnx_options and not dest.endswith('.onnx'):
        raise click.UsageError(f'{", ".join(onnx_options)} apply to an .onnx --dest only (got --dest={dest}).')
    if also_safetensors and not dest.endswith('.pkl'):
        raise click.UsageError(f'--safetensors adds a .safetensors beside a .pkl --dest (got --dest={dest}); '
            'for safetensors alone give --dest=NAME.safetensors.')
    data = open_snapshot(source, trust=trust_pickle, force_fp16=force_fp16)

    os.makedirs(os.path.dirname(dest) or '.', exist_ok=True)
    if dest.endswith('.onnx'):
        try:
            onnx_export.write_onnx(data['G_ema'], dest, onnx_batch, onnx_dynamic_batch, onnx_trunc)
        except onnx_export.ExportError as err:
            raise click.ClickException(str(err))
        return
    if dest.endswith('.safetensors'):
        save_safetensors(data, dest)
        print(f'Wrote {dest} and {os.path.splitext(dest)[0]}.json')
        return
    atomic_write(dest, lambda f: pickle.dump(data, f)) # A failed write never leaves half a snapshot.
    print(f'Wrote {dest}')
    if also_safetensors:
        save_safetensors(data, os.path.splitext(dest)[0] + '.safetensors')
        print(f'Wrote {os.path.splitext(dest)[0]}.safetensors and {os.path.splitext(dest)[0]}.json')

#----------------------------------------------------------------------------

if __name__ == '__main__':
    convert_network_pickle()  # pylint: disable=no-value-for-parameter
