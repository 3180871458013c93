"""The two crops of a pair sample, cut from its frames as shards/pairs.py lays them out.

Mining (jobs/mine.py) and the pair sets cut from ground truth (jobs/truth_pairs.py) both
store pairs through this one function, so a pair means the same pixels whoever made it.
Imports no Ray: the benchmarks and the GPU image use it too.
"""

from __future__ import annotations

import numpy as np

from pul.crops import box_center, context_size, crop_and_resize, search_size
from shards.pairs import X_OUT, X_SIDE, Z_OUT, Z_SIDE, Box, box_in_crop


def crop_pair(
    frame_z: np.ndarray, seed_box: Box, frame_x: np.ndarray, box: Box
) -> tuple[np.ndarray, np.ndarray, Box, Box]:
    """(z crop, x crop, seed box in z's pixels, box in x's pixels): the template side
    around the seed box, the search side around `box`, with the margins of shards.pairs."""
    z_centre = box_center(seed_box)
    z_side = Z_SIDE * context_size(seed_box[2], seed_box[3])
    x_centre = box_center(box)
    x_side = X_SIDE * search_size(context_size(box[2], box[3]))
    return (
        crop_and_resize(frame_z, z_centre, z_side, Z_OUT),
        crop_and_resize(frame_x, x_centre, x_side, X_OUT),
        box_in_crop(seed_box, z_centre, z_side, Z_OUT),
        box_in_crop(box, x_centre, x_side, X_OUT),
    )
