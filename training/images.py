"""uint8 images, PNG files and image grids: the one conversion from float images (the
training loop's grids, the metrics' inputs, the tools' outputs)."""

import numpy as np
import PIL.Image
import torch

#----------------------------------------------------------------------------

def quantize(img, drange=(-1, 1)):
    """Float images with values in drange -> uint8 tensor of the same shape: scaled to [0, 255],
    rounded half up and clamped (the published conversion, bit for bit, for drange (-1, 1))."""
    lo, hi = drange
    scale = 255 / (hi - lo)
    return (torch.as_tensor(img).to(torch.float32) * scale + (0.5 - lo * scale)).clamp(0, 255).to(torch.uint8)


def to_uint8(img, drange=(-1, 1)):
    """Images [N, C, H, W] (generator output by default) -> uint8 numpy [N, H, W, C]."""
    return quantize(torch.as_tensor(img).permute(0, 2, 3, 1), drange).cpu().numpy()


def save_image(array, path):
    """Save a uint8 [H, W, C] array with C = 1 (grayscale) or 3 (RGB) as PNG to a path or binary file object."""
    if array.shape[2] == 1:
        PIL.Image.fromarray(array[:, :, 0], 'L').save(path, format='PNG')
    elif array.shape[2] == 3:
        PIL.Image.fromarray(array, 'RGB').save(path, format='PNG')
    else:
        raise ValueError(f'Cannot save an image with {array.shape[2]} channels as PNG (1 or 3 needed).')


def image_grid(images, cols=None):
    """uint8 images [N, H, W, C] -> one [rows*H, cols*W, C] image, filled row by row (black padding)."""
    n, h, w, c = images.shape
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = (n + cols - 1) // cols
    grid = np.zeros([rows * h, cols * w, c], dtype=np.uint8)
    for i, image in enumerate(images):
        grid[(i // cols) * h:(i // cols + 1) * h, (i % cols) * w:(i % cols + 1) * w] = image
    return grid


def save_image_grid(images, path, drange, grid_size):
    """Save images [gw * gh, C, H, W] with values in drange as one PNG of gw columns and gh rows
    (the training loop's reals.png and fakes*.png)."""
    gw, gh = grid_size
    if len(images) != gw * gh:
        raise ValueError(f'A {gw}x{gh} grid needs {gw * gh} images, got {len(images)}.')
    save_image(image_grid(to_uint8(images, drange), cols=gw), path)

#----------------------------------------------------------------------------
