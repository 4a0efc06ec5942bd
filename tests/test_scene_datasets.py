"""Multi-object scene data (docs/styleformer-c.md): the rendered scenes of training/scenes.py and
dataset_tool.py's --source=scenes, --layout=clevr and --layout=cityscapes on small trees laid out
like the downloads."""

import colorsys

import numpy as np
import PIL.Image
import pytest
from click.testing import CliRunner

import dataset_tool
from training.dataset import ImageFolderDataset
from training.scenes import render_scene

#----------------------------------------------------------------------------

def convert(args):
    result = CliRunner().invoke(dataset_tool.main, args)
    return result


def read_dataset(path):
    dataset = ImageFolderDataset(str(path))
    return np.stack([dataset[i][0] for i in range(len(dataset))])  # [N, C, H, W] uint8.


def saturation(image):
    """Per-pixel HSV saturation of a uint8 [H, W, 3] image."""
    rgb = image.astype(np.float32) / 255
    return (rgb.max(axis=2) - rgb.min(axis=2)) / np.maximum(rgb.max(axis=2), 1e-6)

#----------------------------------------------------------------------------
# Rendered scenes.

def test_scenes_are_deterministic_and_differ_by_seed_and_index():
    a = render_scene(seed=3, index=7, resolution=48)
    assert a.shape == (48, 48, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, render_scene(3, 7, 48))
    assert np.abs(a.astype(int) - render_scene(3, 8, 48)).mean() > 5
    assert np.abs(a.astype(int) - render_scene(4, 7, 48)).mean() > 5


def test_scenes_show_several_coloured_objects_on_a_grey_background():
    hues = set()
    for index in range(8):
        image = render_scene(0, index, 64)
        sat = saturation(image)
        assert np.percentile(sat[:8], 50) < 0.15, index                # The wall at the top is tinted grey.
        coloured = sat > 0.3
        assert 0.02 < coloured.mean() < 0.6, index                     # Objects cover part of the picture.
        hues |= {round(colorsys.rgb_to_hsv(*(p / 255))[0] * 12) % 12 for p in image[coloured].astype(np.float32)}
    assert len(hues) >= 4                                              # Objects of many colours.


def test_scenes_source_writes_the_asked_number_and_size(tmp_path):
    result = convert(['--source=scenes', '--max-images=5', '--width=32', '--height=32', '--seed=2', f'--dest={tmp_path / "a.zip"}'])
    assert result.exit_code == 0, result.output
    images = read_dataset(tmp_path / 'a.zip')
    assert images.shape == (5, 3, 32, 32)
    np.testing.assert_array_equal(images[4].transpose(1, 2, 0), render_scene(2, 4, 32))
    assert 'Wrote 5 32x32 RGB images' in result.output


@pytest.mark.parametrize('args, message', [
    (['--width=32', '--height=32'], '--source=scenes renders --max-images images'),
    (['--max-images=2', '--width=32', '--height=16'], 'give --width and --height equal'),
    (['--max-images=2', '--transform=center-crop'], 'without --transform'),
])
def test_scenes_source_errors(tmp_path, args, message):
    result = convert(['--source=scenes', f'--dest={tmp_path / "a.zip"}', *args])
    assert result.exit_code == 1 and message in result.output and 'Traceback' not in result.output
    assert not (tmp_path / 'a.zip').exists()

#----------------------------------------------------------------------------
# CLEVR and Cityscapes trees.

def _save(path, width, height, side_color, center_color, margin):
    """An RGB image: `side_color` in the `margin` columns at each side, `center_color` between."""
    image = np.zeros([height, width, 3], dtype=np.uint8)
    image[:] = side_color
    image[:, margin:width - margin] = center_color
    path.parent.mkdir(parents=True, exist_ok=True)
    PIL.Image.fromarray(image).save(path)


def _assert_padded_band(image, band_height, color):
    """[C, H, W]: black bars above and below a centred band of `band_height` rows of `color`."""
    bar = (image.shape[1] - band_height) // 2
    assert (image[:, :bar - 1] == 0).all() and (image[:, bar + band_height + 1:] == 0).all()
    band = image[:, bar + 2:bar + band_height - 2, 2:-2].reshape(3, -1)
    assert np.abs(band - np.array(color)[:, None]).max() <= 2


def test_clevr_layout_crops_4_to_3_and_pads(tmp_path):
    root = tmp_path / 'CLEVR_v1.0'
    for split, count in [('train', 2), ('val', 1), ('test', 1)]:
        for i in range(count):  # CLEVR's 480x320: the 4:3 crop is 427 wide, so 26 columns go at each side.
            _save(root / 'images' / split / f'CLEVR_{split}_{i:06d}.png', 480, 320, (255, 0, 0), (0, 160, 60), margin=24)
    (root / 'scenes').mkdir()
    (root / 'scenes' / 'CLEVR_train_scenes.json').write_text('{}')
    _save(root / 'images' / 'thumbnail.png', 480, 320, (255, 0, 0), (255, 0, 0), margin=0)  # Not a CLEVR image.
    result = convert([f'--source={root}', '--layout=clevr', '--width=64', f'--dest={tmp_path / "clevr.zip"}'])
    assert result.exit_code == 0, result.output
    images = read_dataset(tmp_path / 'clevr.zip')
    assert images.shape == (4, 3, 64, 64)
    for image in images:  # 64x48 content, 8 black rows above and below, no red side columns left.
        _assert_padded_band(image, 48, (0, 160, 60))


def test_cityscapes_layout_reads_only_left_images_and_pads_2_to_1(tmp_path):
    root = tmp_path / 'cityscapes'
    for split, city in [('train', 'aachen'), ('val', 'frankfurt'), ('test', 'berlin'), ('train_extra', 'bad-honnef')]:
        _save(root / 'leftImg8bit' / split / city / f'{city}_000000_000019_leftImg8bit.png', 256, 128, (40, 90, 200), (40, 90, 200), 0)
        _save(root / 'gtFine' / split / city / f'{city}_000000_000019_gtFine_color.png', 256, 128, (255, 0, 0), (255, 0, 0), 0)
    result = convert([f'--source={root}', '--layout=cityscapes', '--width=64', f'--dest={tmp_path / "city"}'])
    assert result.exit_code == 0, result.output
    images = read_dataset(tmp_path / 'city')
    assert images.shape == (4, 3, 64, 64)  # The four leftImg8bit images of every split; no gtFine label image.
    for image in images:
        _assert_padded_band(image, 32, (40, 90, 200))


@pytest.mark.parametrize('layout, extra, message', [
    ('clevr', [], 'holds no clevr images; expected the layout CLEVR_v1.0/images'),
    ('cityscapes', ['--transform=center-crop'], '--layout=cityscapes crops and pads as GANformer did'),
])
def test_layout_errors(tmp_path, layout, extra, message):
    _save(tmp_path / 'photos' / 'a.png', 64, 64, (0, 0, 0), (0, 0, 0), 0)
    result = convert([f'--source={tmp_path / "photos"}', f'--layout={layout}', f'--dest={tmp_path / "out.zip"}', *extra])
    assert result.exit_code == 1 and message in result.output and 'Traceback' not in result.output

#----------------------------------------------------------------------------
