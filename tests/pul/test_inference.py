"""The tracking copy of a net (`pul.inference`): batch norms folded, the original untouched."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pul.inference import crops_per_pass, fuse_batchnorms, tracking_net
from pul.models import ModelConfig, build_model
from pul.tracker import TrackerConfig


def trained_looking(backbone: str) -> nn.Module:
    """A width-0.5 net whose batch norms hold statistics and affine parameters far from
    the identity they start as (folding an identity would prove nothing)."""
    torch.manual_seed(0)
    net = build_model(ModelConfig(backbone=backbone, width=0.5))
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.5, 0.5)
    return net


@pytest.mark.parametrize(("backbone", "norms"), [("alexnet", 4), ("resnet22", 24)])
def test_folded_copy_computes_the_same_features(backbone, norms):
    net = trained_looking(backbone)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net.train()
    twin = tracking_net(net)
    assert net.training  # the original keeps its mode ...
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())  # ... and weights
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == norms
    assert not any(isinstance(m, nn.BatchNorm2d) for m in twin.modules())
    assert not twin.training
    x = torch.rand(2, 3, 127, 127) * 255
    with torch.inference_mode():
        ref, got = net.eval().features(x), twin.features(x)
    # measured: 9e-7 of the features' largest magnitude
    assert (got - ref).abs().max() / ref.abs().max() < 1e-5
    assert (got - ref).abs().max() > 0  # really another computation, not the same modules


def test_folding_needs_eval_mode_and_counts_the_pairs():
    net = trained_looking("alexnet")
    with pytest.raises(ValueError, match="eval mode"):
        fuse_batchnorms(net.backbone.train())
    assert fuse_batchnorms(net.backbone.eval()) == 4
    assert fuse_batchnorms(net.backbone) == 0  # nothing left to fold


def test_channels_last_copy():
    net = trained_looking("alexnet")
    twin = tracking_net(net, fuse_bn=False, channels_last=True)
    weight = twin.backbone.conv1[0].weight
    assert weight.is_contiguous(memory_format=torch.channels_last)
    assert not net.backbone.conv1[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in twin.modules()) == 4


def test_layout_and_pass_size_follow_the_measurements():
    """channels_last where it measured faster (AlexNet), not where it measured slower
    (CIResNet-22); one scale pyramid per backbone pass on a CPU, all crops on CUDA."""
    alex, res = trained_looking("alexnet"), trained_looking("resnet22")
    assert (
        tracking_net(alex).backbone.conv1[0].weight.is_contiguous(memory_format=torch.channels_last)
    )
    assert tracking_net(res).backbone.conv1.weight.is_contiguous()
    assert crops_per_pass("cpu", TrackerConfig()) == 3
    assert crops_per_pass("cpu", TrackerConfig(scale_num=5)) == 5
    assert crops_per_pass("cuda", TrackerConfig()) is None
