"""training.dataset.ImageFolderDataset: images, labels, x-flips, subsets, pickling for
DataLoader workers, and clear errors for datasets that cannot be used."""

import io
import json
import os
import pickle
import zipfile

import numpy as np
import PIL.Image
import pytest
import torch

from training.dataset import DatasetError, ImageFolderDataset

#----------------------------------------------------------------------------

def png_bytes(array):
    buffer = io.BytesIO()
    PIL.Image.fromarray(array).save(buffer, format='png')
    return buffer.getvalue()

def write_dataset(path, images, labels=None, names=None):
    """A dataset in the StyleGAN2-ADA layout, as a zip (path ends in .zip) or a folder."""
    names = names or [f'{i // 1000:05d}/img{i:08d}.png' for i in range(len(images))]
    files = {name: png_bytes(image) for name, image in zip(names, images)}
    if labels is not None:
        files['dataset.json'] = json.dumps({'labels': [[name, label] for name, label in zip(names, labels)]}).encode()
    if str(path).endswith('.zip'):
        with zipfile.ZipFile(path, 'w') as archive:
            for name, data in files.items():
                archive.writestr(name, data)
    else:
        for name, data in files.items():
            os.makedirs(os.path.dirname(os.path.join(path, name)), exist_ok=True)
            with open(os.path.join(path, name), 'wb') as f:
                f.write(data)
    return str(path)

def random_images(count, shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(count, *shape), dtype=np.uint8)

#----------------------------------------------------------------------------

@pytest.mark.parametrize('kind', ['zip', 'folder'])
def test_images_and_onehot_labels(tmp_path, kind):
    images = random_images(5, (8, 8, 3))
    path = write_dataset(tmp_path / ('ds.zip' if kind == 'zip' else 'ds'), images, labels=[2, 0, 1, 2, 0])
    dataset = ImageFolderDataset(path, use_labels=True)
    assert len(dataset) == 5 and dataset.name == 'ds'
    assert dataset.image_shape == [3, 8, 8] and dataset.num_channels == 3 and dataset.resolution == 8
    assert dataset.has_labels and dataset.has_onehot_labels
    assert dataset.label_shape == [3] and dataset.label_dim == 3
    for index in range(5):
        image, label = dataset[index]
        assert image.dtype == np.uint8 and label.dtype == np.float32
        np.testing.assert_array_equal(image, images[index].transpose(2, 0, 1))
    np.testing.assert_array_equal(dataset[0][1], [0, 0, 1])
    np.testing.assert_array_equal(dataset.get_label(1), [1, 0, 0])
    assert dataset.get_details(3).raw_label == 2

def test_grayscale_float_labels_and_no_labels(tmp_path):
    images = random_images(3, (4, 4))
    vectors = [[0.5, -1.0], [0.0, 2.5], [1.0, 1.0]]
    path = write_dataset(tmp_path / 'gray.zip', images, labels=vectors)
    dataset = ImageFolderDataset(path, use_labels=True)
    assert dataset.image_shape == [1, 4, 4] and not dataset.has_onehot_labels and dataset.label_shape == [2]
    np.testing.assert_array_equal(dataset[1][0][0], images[1])
    np.testing.assert_allclose(dataset[1][1], vectors[1])

    unlabelled = ImageFolderDataset(path, use_labels=False)
    assert unlabelled.label_shape == [0] and not unlabelled.has_labels and unlabelled[0][1].shape == (0,)
    without_json = ImageFolderDataset(write_dataset(tmp_path / 'plain', images), use_labels=True)
    assert not without_json.has_labels

def test_xflip_doubles_the_dataset(tmp_path):
    images = random_images(3, (6, 6, 3))
    dataset = ImageFolderDataset(write_dataset(tmp_path / 'ds.zip', images, labels=[0, 1, 0]), use_labels=True, xflip=True)
    assert len(dataset) == 6
    for index in range(3):
        original, label = dataset[index]
        flipped, flipped_label = dataset[index + 3]
        np.testing.assert_array_equal(flipped, original[:, :, ::-1])
        np.testing.assert_array_equal(label, flipped_label)
        assert not dataset.get_details(index).xflip and dataset.get_details(index + 3).xflip

def test_random_subset_is_deterministic(tmp_path):
    images = random_images(30, (4, 4, 3))
    path = write_dataset(tmp_path / 'ds.zip', images)
    def subset(**kwargs):
        dataset = ImageFolderDataset(path, max_size=8, **kwargs)
        return [dataset.get_details(i).raw_idx for i in range(len(dataset))]
    first = subset(random_seed=0)
    assert len(first) == 8 and first == sorted(set(first))
    assert subset(random_seed=0) == first
    assert subset(random_seed=1) != first
    dataset = ImageFolderDataset(path, max_size=8, random_seed=0)
    np.testing.assert_array_equal(dataset[2][0], images[first[2]].transpose(2, 0, 1))
    assert len(ImageFolderDataset(path, max_size=100)) == 30

def test_picklable_and_dataloader_workers(tmp_path):
    images = random_images(12, (8, 8, 3))
    path = write_dataset(tmp_path / 'ds.zip', images, labels=list(range(12)))
    dataset = ImageFolderDataset(path, use_labels=True, xflip=True)
    _ = dataset[0]  # Opens the zip in this process.
    clone = pickle.loads(pickle.dumps(dataset))
    np.testing.assert_array_equal(clone[13][0], dataset[13][0])

    loader = torch.utils.data.DataLoader(dataset, batch_size=6, num_workers=2, shuffle=False)
    loaded_images = torch.cat([batch[0] for batch in loader]).numpy()
    loaded_labels = torch.cat([batch[1] for batch in loader]).numpy()
    np.testing.assert_array_equal(loaded_images, np.stack([dataset[i][0] for i in range(len(dataset))]))
    np.testing.assert_array_equal(loaded_labels.argmax(axis=1), list(range(12)) * 2)

def test_reads_styleformer_and_stylegan2_ada_layouts_alike(tmp_path):
    # Any image names work; the order is the sorted order of the relative paths.
    images = random_images(3, (4, 4, 3))
    path = write_dataset(tmp_path / 'ds', images, labels=[5, 6, 7], names=['z/c.png', 'a.png', 'm/b.png'])
    dataset = ImageFolderDataset(path, use_labels=True)
    np.testing.assert_array_equal(dataset[0][0], images[1].transpose(2, 0, 1))  # a.png
    assert [int(dataset.get_label(i).argmax()) for i in range(3)] == [6, 7, 5]

#----------------------------------------------------------------------------
# Errors.

def test_missing_path(tmp_path):
    with pytest.raises(DatasetError, match='does not exist.*dataset_tool.py'):
        ImageFolderDataset(str(tmp_path / 'nothing.zip'))

def test_empty_dataset(tmp_path):
    (tmp_path / 'empty').mkdir()
    with pytest.raises(DatasetError, match='no image files'):
        ImageFolderDataset(str(tmp_path / 'empty'))

def test_non_square_images(tmp_path):
    path = write_dataset(tmp_path / 'ds.zip', random_images(2, (4, 6, 3)))
    with pytest.raises(DatasetError, match='not square.*center-crop'):
        ImageFolderDataset(path)

def test_wrong_resolution(tmp_path):
    path = write_dataset(tmp_path / 'ds.zip', random_images(2, (8, 8, 3)))
    assert ImageFolderDataset(path, resolution=8).resolution == 8
    with pytest.raises(DatasetError, match='8x8, not 16x16.*--width=16 --height=16'):
        ImageFolderDataset(path, resolution=16)

def test_labels_missing_for_some_images(tmp_path):
    images = random_images(3, (4, 4, 3))
    path = write_dataset(tmp_path / 'ds.zip', images, labels=[0, 1, 2])
    with zipfile.ZipFile(path, 'a') as archive:
        archive.writestr('00000/img00000003.png', png_bytes(images[0]))
    assert len(ImageFolderDataset(path)) == 4  # Fine without labels.
    with pytest.raises(DatasetError, match=r"no label for '00000/img00000003.png' \(1 of 4"):
        ImageFolderDataset(path, use_labels=True)

def test_image_of_another_size_is_named(tmp_path):
    path = write_dataset(tmp_path / 'ds', list(random_images(2, (4, 4, 3))) + [random_images(1, (5, 5, 3))[0]])
    dataset = ImageFolderDataset(path)
    _ = dataset[1]
    with pytest.raises(DatasetError, match=r"img00000002.png' is 5x5 \(3 channels\), unlike the first image "
                                           r"'.*/00000/img00000000.png' \(4x4 \(3 channels\)\); all images must have one size"):
        _ = dataset[2]

def test_unreadable_image_and_bad_labels_file(tmp_path):
    path = write_dataset(tmp_path / 'ds', random_images(2, (4, 4, 3)))
    with open(os.path.join(path, '00000', 'img00000001.png'), 'wb') as f:
        f.write(b'garbage')
    dataset = ImageFolderDataset(path)
    with pytest.raises(DatasetError, match='cannot read image .*img00000001.png'):
        _ = dataset[1]
    with open(os.path.join(path, 'dataset.json'), 'w', encoding='utf-8') as f:
        f.write('{"something": 1}')
    with pytest.raises(DatasetError, match='dataset.json'):
        ImageFolderDataset(path, use_labels=True)

def test_not_a_dataset(tmp_path):
    (tmp_path / 'file.txt').write_text('hello')
    with pytest.raises(DatasetError, match='neither a folder nor a .zip'):
        ImageFolderDataset(str(tmp_path / 'file.txt'))
    (tmp_path / 'broken.zip').write_bytes(b'not a zip')
    with pytest.raises(DatasetError, match='cannot read zip'):
        ImageFolderDataset(str(tmp_path / 'broken.zip'))

#----------------------------------------------------------------------------
