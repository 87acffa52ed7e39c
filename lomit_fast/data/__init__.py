"""Data: the synthetic set with ground truth, CelebA / folder / table sources, image decoding,
and the locality metrics that need the synthetic ground truth. Training, evaluation and the
translate job all stand on this package."""
