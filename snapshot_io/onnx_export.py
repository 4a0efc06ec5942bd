"""Export G_ema to ONNX, for use outside this repository (onnxruntime, TensorRT, other languages).

The ONNX graph has the inputs
    z    float32 [N, z_dim]
    c    float32 [N, c_dim]   (conditional networks only: one-hot class labels)
    psi  float32 []           (truncation psi; only when it is not fixed at export)
and the output
    img  float32 [N, img_channels, H, W], in [-1, 1] as G returns it,
with constant noise (noise_mode='const'), so that z of seed s gives the image of
`generate.py --seeds=s` (whose default noise mode is const). N is fixed at export or dynamic.

The export uses torch's current exporter (torch.export, then onnxscript) at opset OPSET, on the CPU
in float32 with the reference (pure PyTorch) ops.
"""

import copy

import numpy as np
import torch

from dnnlib.util import atomic_write

#----------------------------------------------------------------------------

OPSET = 23  # The newest opset torch 2.13's exporter writes; onnxruntime 1.32 runs it.


class ExportError(Exception):
    """The generator cannot be exported as asked; the message says why."""


class GeneratorForExport(torch.nn.Module):
    """G(z, c) with constant noise and truncation psi either fixed or taken as an input."""

    def __init__(self, G, truncation_psi):
        super().__init__()
        self.G = G
        self.truncation_psi = truncation_psi  # None: psi is an input of the graph.

    def forward(self, *inputs):
        z, rest = inputs[0], list(inputs[1:])
        c = rest.pop(0) if self.G.c_dim > 0 else None
        if self.truncation_psi is None:
            ws = self.G.mapping.w_avg.lerp(self.G.mapping(z, c), rest.pop(0))  # The mapping's truncation, psi as a tensor.
        else:
            ws = self.G.mapping(z, c, truncation_psi=self.truncation_psi)
        return self.G.synthesis(ws, noise_mode='const')


def input_names(G, psi_input):
    return ['z'] + (['c'] if G.c_dim > 0 else []) + (['psi'] if psi_input else [])


def example_inputs(G, batch_size, psi_input, truncation_psi=1.0):
    """Inputs of the exported graph as tensors: seeded z, one-hot c of class i % c_dim, psi."""
    z = torch.from_numpy(np.random.RandomState(0).randn(batch_size, G.z_dim).astype(np.float32))
    inputs = [z]
    if G.c_dim > 0:
        inputs.append(torch.nn.functional.one_hot(torch.arange(batch_size) % G.c_dim, G.c_dim).float())
    if psi_input:
        inputs.append(torch.tensor(truncation_psi, dtype=torch.float32))
    return tuple(inputs)


def export_onnx(G, path, batch_size=1, dynamic_batch=False, truncation_psi=1.0, verbose=True):
    """Write G (G_ema) to `path` as ONNX. truncation_psi=None makes psi an input; dynamic_batch
    lets N vary (batch_size is then only the size traced with)."""
    if batch_size < 1:
        raise ExportError(f'The batch size must be at least 1, got {batch_size}.')
    if truncation_psi is None and getattr(G.mapping, 'w_avg', None) is None:
        raise ExportError('psi as an input needs the running average of W (w_avg), which this mapping network lacks.')
    G = copy.deepcopy(G).cpu().float().eval().requires_grad_(False)  # Float32 with the reference ops; the caller's G is left as it is.
    psi_input = truncation_psi is None
    names = input_names(G, psi_input)
    # torch.export treats a traced size of 1 as a constant, so a dynamic batch is traced with 2.
    inputs = example_inputs(G, max(batch_size, 2) if dynamic_batch else batch_size, psi_input)
    dynamic_shapes = None
    if dynamic_batch:
        batch = torch.export.Dim('batch', min=1)
        dynamic_shapes = (tuple({0: batch} if name in ('z', 'c') else None for name in names),)  # forward(*inputs): one group.
    try:
        program = torch.onnx.export(GeneratorForExport(G, truncation_psi).eval(), inputs, dynamo=True, opset_version=OPSET,
            input_names=names, output_names=['img'], dynamic_shapes=dynamic_shapes, external_data=False, verbose=verbose)
    except ImportError as err:
        raise ExportError(f'ONNX export needs the onnx and onnxscript packages ({err}); install them with '
            f'pip install -r requirements.txt.') from err
    batch_dim = program.model_proto.graph.input[0].type.tensor_type.shape.dim[0]
    if dynamic_batch and not batch_dim.dim_param:  # The exporter may fall back to the traced size silently.
        raise ExportError('This generator cannot take a dynamic batch: its code fixes the batch size when traced '
            '(StyleGAN2 generators do, in their grouped modulated convolutions). Export a fixed batch with '
            '--onnx-batch=N instead.')
    data = program.model_proto.SerializeToString()
    atomic_write(path, lambda f: f.write(data))  # A failed write leaves no half-written file.


def compare_with_onnxruntime(G, path, truncation_psi, batch_size=2):
    """Largest absolute difference between onnxruntime's images from `path` and G's own for example
    inputs. truncation_psi: the one exported with; None (psi is an input) feeds psi=0.7."""
    import onnxruntime  # pylint: disable=import-outside-toplevel
    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    psi_input = truncation_psi is None
    inputs = example_inputs(G, batch_size, psi_input, truncation_psi=0.7)
    with torch.no_grad():
        expected = GeneratorForExport(G, truncation_psi)(*inputs).numpy()
    actual = session.run(['img'], {name: value.numpy() for name, value in zip(input_names(G, psi_input), inputs)})[0]
    return float(np.abs(actual - expected).max())


def parse_truncation(text):
    """--onnx-trunc: a number fixes psi in the graph, 'input' makes it an input."""
    if text == 'input':
        return None
    try:
        return float(text)
    except ValueError:
        raise ExportError(f'--onnx-trunc must be a number (e.g. 0.7) or "input", got {text!r}.') from None


def write_onnx(G, path, batch_size, dynamic_batch, truncation):
    """legacy.py --dest=X.onnx: export, then check the file with onnxruntime and say what it holds."""
    truncation_psi = parse_truncation(truncation)
    export_onnx(G, path, batch_size=batch_size, dynamic_batch=dynamic_batch, truncation_psi=truncation_psi)
    difference = compare_with_onnxruntime(G, path, truncation_psi, batch_size=3 if dynamic_batch else batch_size)
    shapes = {'z': f'[N, {G.z_dim}]', 'c': f'[N, {G.c_dim}]', 'psi': '[]'}
    inputs = ', '.join(f'{name} {shapes[name]}' for name in input_names(G, truncation_psi is None))
    batch = 'N dynamic' if dynamic_batch else f'N = {batch_size}'
    print(f'Wrote {path}: opset {OPSET}, inputs {inputs}, output img [N, {G.img_channels}, {G.img_resolution}, '
        f'{G.img_resolution}], {batch}; onnxruntime matches PyTorch within {difference:.1e}.')
