"""The data: datasets and their transforms (`datasets`), finding a dataset under the data root and
downloading the known ones (`download`), image I/O and sample grids (`images`), and checking every
image file before a run starts (`check`).

Batches from here feed the nets in `minigan.nets`; the kit (`minigan.kit`) orders them by seed and
epoch. Nothing here imports the layers, the nets or the kit.
"""
from .datasets import (MNIST, ImageFolder, PairedImages, UnpairedImages, center_square, halves,
                       random_crop_flip, split_pair, transform)
from .check import check_images
from .download import find_dataset, layout_problem
from .images import image_files, load_image, save_grid, save_image

__all__ = ["MNIST", "ImageFolder", "PairedImages", "UnpairedImages", "center_square", "halves", "random_crop_flip",
           "split_pair", "transform", "check_images", "find_dataset", "layout_problem", "image_files",
           "load_image",
           "save_grid", "save_image"]
