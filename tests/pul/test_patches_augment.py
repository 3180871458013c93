"""Stage-1 patches (shape, texture rejection, overlap) and their two augmented views."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap

import numpy as np
import pytest

from pul.augment import AugmentConfig, augment, two_views
from pul.patches import PatchConfig, sample_patches, texture

OFF = dict(stretch=0.0, flip_prob=0.0, colour_prob=0.0, gray_prob=0.0, blur_prob=0.0)


def noise_frame(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def half_flat_frame() -> np.ndarray:
    """240 x 480: columns 0..239 flat gray, 240..479 colour noise."""
    frame = noise_frame(240, 480)
    frame[:, :240] = 128
    return frame


def colourful_patches(n: int, seed: int = 0) -> np.ndarray:
    """Patches whose left and right halves differ (flips show) and whose channels differ."""
    rng = np.random.default_rng(seed)
    patches = rng.integers(0, 256, size=(n, 127, 127, 3), dtype=np.uint8)
    patches[:, :, :40] //= 4
    return patches


def test_patches_have_template_shape_and_boxes_inside_the_frame():
    frame = noise_frame(240, 320)
    patches, boxes = sample_patches(frame, 16, np.random.default_rng(0), PatchConfig())
    assert patches.shape == (16, 127, 127, 3) and patches.dtype == np.uint8
    assert boxes.shape == (16, 4)
    x, y, w, h = boxes.T
    assert (x >= 0).all() and (y >= 0).all() and (x + w <= 320).all() and (y + h <= 240).all()
    side = np.sqrt(w * h)  # log-uniform in [0.1, 0.5] of the shorter side, aspect <= 1.5
    assert (side >= 24 - 1e-9).all() and (side <= 120 + 1e-9).all()
    assert (np.maximum(w / h, h / w) <= 1.5 + 1e-9).all()


def test_textureless_regions_are_rejected():
    frame = half_flat_frame()
    cfg = PatchConfig(max_iou=1.0)
    patches, boxes = sample_patches(frame, 40, np.random.default_rng(1), cfg)
    assert len(patches) == 40
    assert (boxes[:, 0] + boxes[:, 2] > 240).all()  # every box reaches the textured half
    # Without the criterion a good share of the boxes lie wholly in the flat half.
    _, unfiltered = sample_patches(
        frame, 40, np.random.default_rng(1), dataclasses.replace(cfg, min_texture=0.0)
    )
    assert (unfiltered[:, 0] + unfiltered[:, 2] <= 240).mean() > 0.2


def test_a_flat_frame_gives_fewer_patches_instead_of_looping():
    flat = np.full((200, 300, 3), 90, np.uint8)
    patches, boxes = sample_patches(flat, 8, np.random.default_rng(2), PatchConfig())
    assert patches.shape == (0, 127, 127, 3) and boxes.shape == (0, 4)
    flat[:, :2] = 0  # almost flat: a 2-pixel stripe at the border
    assert texture(flat[:127, :127], np.array([127, 127])) < PatchConfig().min_texture


def test_patches_of_one_frame_overlap_at_most_max_iou():
    _, boxes = sample_patches(
        noise_frame(240, 320), 12, np.random.default_rng(3), PatchConfig(max_iou=0.3)
    )
    assert len(boxes) >= 8
    x0, y0 = boxes[:, 0], boxes[:, 1]
    x1, y1 = x0 + boxes[:, 2], y0 + boxes[:, 3]
    inter = np.clip(np.minimum(x1[:, None], x1) - np.maximum(x0[:, None], x0), 0, None) * np.clip(
        np.minimum(y1[:, None], y1) - np.maximum(y0[:, None], y0), 0, None
    )
    area = boxes[:, 2] * boxes[:, 3]
    iou = inter / (area[:, None] + area - inter)
    np.fill_diagonal(iou, 0)
    assert iou.max() <= 0.3


def test_augmentation_is_seeded_and_the_two_views_differ():
    patches = colourful_patches(32)
    before = patches.copy()
    a1, b1 = two_views(patches, np.random.default_rng(7), AugmentConfig())
    a2, b2 = two_views(patches, np.random.default_rng(7), AugmentConfig())
    a3, _ = two_views(patches, np.random.default_rng(8), AugmentConfig())
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(b1, b2)
    np.testing.assert_array_equal(patches, before)  # input untouched
    assert a1.shape == patches.shape and a1.dtype == np.uint8
    diff = np.abs(a1.astype(np.int16) - b1).mean(axis=(1, 2, 3))
    assert (diff > 5).all()
    assert (np.abs(a1.astype(np.int16) - a3).mean(axis=(1, 2, 3)) > 5).mean() > 0.9


def test_everything_off_is_the_identity():
    patches = colourful_patches(8)
    np.testing.assert_array_equal(
        augment(patches, np.random.default_rng(0), AugmentConfig(**OFF)), patches
    )


def test_flips_happen_at_their_probability_and_are_exact_mirrors():
    patches = colourful_patches(400, seed=1)
    cfg = AugmentConfig(**{**OFF, "flip_prob": 0.5})
    out = augment(patches, np.random.default_rng(4), cfg)
    same = (out == patches).all(axis=(1, 2, 3))
    mirrored = (out == patches[:, :, ::-1]).all(axis=(1, 2, 3))
    assert (same ^ mirrored).all()
    assert 0.40 < mirrored.mean() < 0.60  # 400 draws: 4 standard deviations either side


def test_grayscale_happens_at_its_probability():
    patches = colourful_patches(600, seed=2)
    out = augment(patches, np.random.default_rng(5), AugmentConfig(**{**OFF, "gray_prob": 0.2}))
    gray = ((out[..., 0] == out[..., 1]) & (out[..., 1] == out[..., 2])).all(axis=(1, 2))
    assert 0.14 < gray.mean() < 0.26
    untouched = (out == patches).all(axis=(1, 2, 3))
    assert (gray ^ untouched).all()


def test_colour_jitter_keeps_gray_gray_and_scales_brightness():
    gray = np.repeat(colourful_patches(50, seed=3)[..., :1] // 2 + 40, 3, axis=3)
    cfg = AugmentConfig(**{**OFF, "colour_prob": 1.0, "contrast": 0.0})
    out = augment(gray, np.random.default_rng(6), cfg).astype(np.int16)
    # Hue and saturation act on chroma only: a gray patch stays gray (up to rounding).
    assert np.abs(out[..., 0] - out[..., 2]).max() <= 1
    ratio = out.mean(axis=(1, 2, 3)) / gray.mean(axis=(1, 2, 3))
    assert (ratio > 0.6 - 0.01).all() and (ratio < 1.4 + 0.01).all() and ratio.std() > 0.1


def test_blur_and_stretch_change_the_patch():
    patches = colourful_patches(20, seed=4)
    # sigma from 1 px: at OpenCV's kernel size for sigma 0.1 (one tap) a blur changes nothing.
    blur = AugmentConfig(**{**OFF, "blur_prob": 1.0, "blur_sigma_min": 1.0})
    blurred = augment(patches, np.random.default_rng(7), blur)
    sharp = [texture(p, np.array([127, 127])) for p in patches]
    soft = [texture(p, np.array([127, 127])) for p in blurred]
    assert all(s < 0.9 * t for s, t in zip(soft, sharp, strict=True))
    stretched = augment(
        patches, np.random.default_rng(8), AugmentConfig(**{**OFF, "stretch": 0.05})
    )
    assert (stretched != patches).any(axis=(1, 2, 3)).mean() > 0.9
    # Scaling about the centre leaves the centre pixel where it was.
    np.testing.assert_allclose(stretched[:, 63, 63], patches[:, 63, 63], atol=1)


@pytest.mark.parametrize("cls", [PatchConfig, AugmentConfig])
def test_configs_document_every_field_and_validate(cls):
    body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body
    documented = {
        node.target.id
        for node, after in zip(body, body[1:], strict=False)
        if isinstance(node, ast.AnnAssign) and isinstance(after, ast.Expr)
    }
    assert documented == {f.name for f in dataclasses.fields(cls)}
    bad = {"min_scale": 0.6} if cls is PatchConfig else {"flip_prob": 1.5}
    with pytest.raises(ValueError, match=next(iter(bad))):
        cls(**bad)
