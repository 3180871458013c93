"""Siamese models: shapes, the published channel and parameter counts, the batched head."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap

import pytest
import torch
import torch.nn.functional as F

from pul.models import (
    AlexNet,
    CIResNet22,
    ModelConfig,
    Projection,
    XCorr,
    build_model,
)
from pul.models.alexnet import scaled_channels


def images(b: int, side: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, side, side, generator=g) * 255


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    ("backbone", "width", "channels", "z_side", "x_side"),
    [
        ("alexnet", 1.0, 256, 6, 22),
        ("alexnet", 0.25, 64, 6, 22),
        ("resnet22", 1.0, 512, 5, 21),
        ("resnet22", 0.25, 128, 5, 21),
    ],
)
def test_shapes_give_a_17x17_response(backbone, width, channels, z_side, x_side):
    net = build_model(ModelConfig(backbone=backbone, width=width)).eval()
    z, x = images(2, 127), images(2, 255, seed=1)
    with torch.no_grad():
        assert net.features(z).shape == (2, channels, z_side, z_side)
        assert net.features(x).shape == (2, channels, x_side, x_side)
        assert net(z, x).shape == (2, 1, 17, 17)
        assert net.embed(z).shape == (2, 128)
    assert net.total_stride == 8
    assert net.out_channels == channels


def test_alexnet_has_siamfc_pytorch_channels_and_parameter_count():
    net = AlexNet(1.0)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [96, 256, 384, 384, 256]
    assert [c.groups for c in convs] == [1, 2, 1, 2, 2]
    assert [c.kernel_size[0] for c in convs] == [11, 5, 3, 3, 3]
    # siamfc-pytorch AlexNetV1: 2,336,320 = convs 2,333,376 + BN affine 2,944
    assert n_params(net) == 2_336_320
    # conv5 ends the network: no batch norm or ReLU after it
    assert list(net.children())[-1][-1] is convs[-1]


def test_alexnet_width_rounds_to_the_groups():
    assert scaled_channels(1.0) == (96, 256, 384, 384, 256)
    assert scaled_channels(0.25) == (24, 64, 96, 96, 64)
    assert all(c % 2 == 0 for c in scaled_channels(0.3))
    assert n_params(AlexNet(0.25)) < n_params(AlexNet(1.0)) / 10


def test_ciresnet22_layout_and_parameter_count():
    net = CIResNet22(1.0)
    assert len(net.layer1) == 3  # three CIR units
    assert len(net.layer2) == 5  # CIR-D (unit + 2x2 max pool) and three CIR units
    assert isinstance(net.layer2[1], torch.nn.MaxPool2d)
    assert [u.last_relu for u in net.layer2 if hasattr(u, "last_relu")] == [True, True, True, False]
    # stem 9,536 + layer1 215,808 + layer2 1,219,584 (weights and BN affine)
    assert n_params(net) == 1_444_928


@pytest.mark.parametrize("backbone", [AlexNet, CIResNet22])
def test_features_shift_with_the_image(backbone):
    """No padding reaches the output: shifting the image by the stride shifts the features.

    Without SiamDW's in-unit crops the border features of CIResNet would see the padding and
    this would fail.
    """
    net = backbone(0.25).eval()
    x = images(1, 255)
    with torch.no_grad():
        whole = net(x)
        shifted = net(x[:, :, 8:, 8:])
    n = shifted.shape[-1]
    assert whole.shape[-1] == n + 1
    torch.testing.assert_close(shifted, whole[:, :, 1 : n + 1, 1 : n + 1], rtol=1e-4, atol=1e-3)


def test_head_is_one_grouped_conv_equal_to_a_loop():
    head = XCorr(out_scale=0.001)
    g = torch.Generator().manual_seed(0)
    z, x = torch.randn(4, 8, 6, 6, generator=g), torch.randn(4, 8, 22, 22, generator=g)
    looped = torch.cat([F.conv2d(x[i : i + 1], z[i : i + 1]) for i in range(4)]) * 0.001
    batched = head(z, x)
    assert batched.shape == (4, 1, 17, 17)
    torch.testing.assert_close(batched, looped, rtol=0, atol=1e-5)


def test_head_matches_one_exemplar_to_a_scale_pyramid():
    head = XCorr(out_scale=1.0)
    g = torch.Generator().manual_seed(1)
    z, x = torch.randn(1, 8, 6, 6, generator=g), torch.randn(3, 8, 22, 22, generator=g)
    torch.testing.assert_close(head(z, x), F.conv2d(x, z), rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="cannot correlate"):
        head(torch.randn(2, 8, 6, 6), x)


def test_projection_gives_unit_embeddings_that_depend_on_the_input():
    proj = Projection(64, out_dim=32).eval()
    feats = torch.randn(5, 64, 6, 6)
    emb = proj(feats)
    assert emb.shape == (5, 32)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(5))
    assert (emb[0] - emb[1]).abs().max() > 1e-3


def test_model_config_validates_and_documents_every_field():
    assert ModelConfig().backbone == "alexnet"
    for bad in ({"backbone": "vgg"}, {"width": 0.0}, {"out_scale": -1.0}, {"embed_dim": 0}):
        with pytest.raises(ValueError) as err:
            ModelConfig(**bad)
        assert "\n" not in str(err.value)
    # the config loader reads the string literal under each field
    body = ast.parse(textwrap.dedent(inspect.getsource(ModelConfig))).body[0].body
    documented = {
        node.target.id
        for node, after in zip(body, body[1:], strict=False)
        if isinstance(node, ast.AnnAssign) and isinstance(after, ast.Expr)
    }
    assert documented == {f.name for f in dataclasses.fields(ModelConfig)}
