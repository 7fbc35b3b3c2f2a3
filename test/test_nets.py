import pytest
import torch

from anomaly_seg_ros.errors import ConfigError
from anomaly_seg_ros.nets import NETS, build_net


@pytest.mark.parametrize('name', sorted(NETS))
def test_forward_shape_no_nan(name: str) -> None:
    net = build_net(name, 19, width=8).eval()
    with torch.inference_mode():
        out = net(torch.randn(1, 3, 64, 128))
    assert out.shape == (1, 19, 64, 128)
    assert torch.isfinite(out).all()


def test_training_mode_returns_aux_heads() -> None:
    net = build_net('icnet_small', 19, width=8).train()
    logits, aux_mid, aux_low = net(torch.randn(2, 3, 64, 128))
    assert logits.shape == (2, 19, 64, 128)
    assert aux_mid.shape[1] == aux_low.shape[1] == 19


def test_unknown_architecture_lists_registered() -> None:
    with pytest.raises(ConfigError, match="unknown architecture 'resnet'; registered: icnet_small"):
        build_net('resnet', 19)


def test_bad_arch_args_named() -> None:
    with pytest.raises(ConfigError, match='bad arch_args'):
        build_net('icnet_small', 19, depth=3)


@pytest.mark.parametrize('shape', [(1, 4, 2, 4), (1, 3, 3, 7), (1, 2, 8, 8), (1, 2, 5, 1)])
def test_pyramid_pool_exportable_average_equals_adaptive_pool(shape: tuple[int, int, int, int]) -> None:
    """Bins that do not divide the 1/32 map are averaged by matrices, equal to adaptive pooling."""
    import torch.nn.functional as F

    from anomaly_seg_ros.nets.icnet import _adaptive_avg

    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    for b in (2, 4):
        torch.testing.assert_close(_adaptive_avg(x, b), F.adaptive_avg_pool2d(x, (b, b)))
