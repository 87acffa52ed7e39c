"""Evaluation arithmetic on cases with known answers."""
import torch

from lomit_fast.data.locality import mask_iou, nearest_class, psnr
from lomit_fast.eval.metrics import fid, frechet_distance
from lomit_fast.data.synthetic import synthetic_batch


def test_frechet_distance_of_diagonal_gaussians():
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    a, b = torch.tensor([1.0, 4.0, 9.0]), torch.tensor([4.0, 1.0, 1.0])
    expected = (mu1 - mu2).square().sum() + (a + b - 2 * (a * b).sqrt()).sum()  # 5 + 1 + 1 + 4
    got = frechet_distance(mu1, torch.diag(a), mu2, torch.diag(b))
    assert abs(got - expected.item()) < 1e-9 and abs(got - 11.0) < 1e-9


def test_fid_of_samples_approaches_the_formula():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(20000, 4, generator=g, dtype=torch.float64)
    fake = torch.randn(20000, 4, generator=g, dtype=torch.float64) * 2 + 1
    # Exact: |mu|^2 = 4, trace term 4 * (1 + 4 - 2 * 2) = 4 -> 8.
    assert abs(fid(real, fake) - 8.0) < 0.3
    assert fid(real, real) < 1e-8


def test_masks_and_psnr_by_hand():
    truth = torch.zeros(1, 1, 8, 8)
    truth[..., :4, :] = 1
    perfect = torch.zeros(1, 1, 2, 2)
    perfect[..., :1, :] = 1
    assert mask_iou(perfect, truth).item() == 1.0
    assert mask_iou(1 - perfect, truth).item() == 0.0
    x = torch.zeros(1, 3, 8, 8)
    # An error of 0.2 in [-1, 1] is 0.1 in [0, 1]: PSNR = 10 log10(1 / 0.01) = 20 dB.
    assert abs(psnr(x + 0.2, x, truth).item() - 20.0) < 1e-4


def test_nearest_class_recovers_synthetic_classes():
    batch = synthetic_batch(16, 32, seed=5)
    assert torch.equal(nearest_class(batch.images, batch.masks), batch.classes)
