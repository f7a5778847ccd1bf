"""What the two image-to-image scripts (train_pix2pix.py, train_cyclegan.py) share: the papers' jitter
sizes, translating image files (the reference's test protocol, or near each image's own size), mixed
precision.

Both papers (Isola et al. 2017, Zhu et al. 2017) resize every training image to 286x286 and take a
random 256x256 crop (plus a random horizontal flip): "random jitter". At another --image-size S the
scripts keep the ratio: load S*286/256, crop S.
"""
import contextlib
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import MiniganError
from ..data.datasets import halves
from ..data.images import EXTENSIONS, from_pil, image_files, load_image, save_image, to_pil
from .distributed import is_main
from .run import generate

LOAD, CROP = 286, 256  # resize to 286, random crop 256: the papers' jitter


def add_translation_args(parser):
    g = parser.add_argument_group("translating and speed")
    g.add_argument("--translate", metavar="DIR_OR_FILE", help="translate these images with the generator of "
                   "--checkpoint/--resume or --init-from, write them to <run dir>/translated/, and exit")
    g.add_argument("--native-size", action="store_true", help="translate each image near its own size (resized "
                   "to the nearest size G takes and back, rounded to 8 bits) instead of the reference's test protocol "
                   "(resized to --image-size squared, Pillow bicubic, the output at that size, 8 bits by truncation)")
    g.add_argument("--init-from", metavar="FILE.pth", help="start G (CycleGAN: the --direction one) from the "
                   "reference implementation's published weights: a state_dict file, or a dict holding one under "
                   "'state_dict'; not used when a checkpoint is loaded")
    g.add_argument("--amp", action="store_true", help="mixed precision on CUDA: bf16 autocast (fp16 with loss "
                   "scaling on GPUs without bf16); ignored on CPU")
    g.add_argument("--channels-last", action="store_true",
                   help="keep nets and images in channels_last (NHWC) memory: faster convolutions on CUDA")


@torch.no_grad()
def translate_files(G, args, ckpt, folder, multiple, device, direction=None, training=False):
    """G on every image of --translate (a file, or a folder searched recursively); each output, as
    .png, at the input's relative path in <folder>/translated/.

    By default the reference code's test protocol (its test.py, where load_size = crop_size): every
    input resized to S x S (S = --image-size, 256 by default) with Pillow's bicubic filter, the
    output written at S x S and converted to 8 bits by truncation as its tensor2im does, so that the
    outputs, and any FID computed on them, compare with published numbers. --native-size keeps each
    image near its own size instead: resized (torch bicubic) to the nearest size G accepts
    (multiples of `multiple`), translated, resized back, rounded to 8 bits.

    `direction` (pix2pix: "AtoB" or "BtoA") reads A|B pairs: every image of a dataset folder (its
    test/ split, else val/) and any image twice as wide as high elsewhere. The input half (A, the
    left one, for AtoB) is translated, and input | output | target goes to <folder>/side_by_side/
    as well; any other image is translated whole. Each image is a batch of its own; `training` as in
    kit.generate (True: pix2pix's test-time protocol)."""
    if ckpt is None and not args.init_from:
        raise MiniganError("--translate needs trained weights: pass --checkpoint RUN_DIR or --init-from FILE.pth")
    source, files, all_pairs = translation_inputs(Path(args.translate), paired=direction is not None)
    if not files:
        raise MiniganError(f"--translate {source}: no images ({EXTENSIONS}) there")
    if not is_main():  # under torchrun: once, by rank 0
        return
    size = None if args.native_size else args.image_size
    n_pairs = 0
    for path in files:
        img = load_image(path)
        name = (path.relative_to(source) if path != source else Path(path.name)).with_suffix(".png")
        is_pair = direction is not None and (all_pairs or img.width == 2 * img.height)
        x, target = halves(img, direction) if is_pair else (img, None)
        y = translate_image(G, x, size, multiple, device, training)  # 3 x H x W, 8-bit levels
        save_image(y, folder / "translated" / name)
        if is_pair:  # input | output | target, each as G saw it (resized) or at its own size
            x, target = (from_pil(i if size is None else i.resize((size, size), Image.BICUBIC)) for i in (x, target))
            save_image(torch.cat([x, y, target], 2), folder / "side_by_side" / name)
            n_pairs += 1
    protocol = "near their own sizes" if size is None else f"at {size}x{size}, the reference's test protocol"
    print(f"translated {len(files)} image(s) {protocol}, into {folder / 'translated'}/"
          + (f"; {n_pairs} A|B pair(s) as input | output | target in {folder / 'side_by_side'}/" if n_pairs else ""))


def translation_inputs(source, paired):
    """(root, image files, whether all of them are A|B pairs) for --translate: a pix2pix dataset
    folder (test/, else val/, of A|B pairs) when `paired`, else the file or the folder's images."""
    if paired and source.is_dir():
        split = next((source / s for s in ("test", "val") if (source / s).is_dir()), None)
        if split is not None:
            return split, image_files(split), True
    return source, [source] if source.is_file() else image_files(source), False


def translate_image(G, img, size, multiple, device, training=False):
    """G's translation of a PIL image as a 3 x H x W tensor of 8-bit levels in [-1, 1]: at size x size
    (Pillow bicubic in, truncated to 8 bits out: the reference's protocol), or with size None near
    the image's own size (see translate_files)."""
    if size is not None:
        x = from_pil(img.resize((size, size), Image.BICUBIC))[None].to(device)   # 1 x 3 x S x S
        return from_pil(to_pil(generate(G, x, training)[0].float(), truncate=True))
    x = from_pil(img)[None].to(device)                                           # 1 x 3 x H x W
    h, w = x.shape[-2:]
    fit = [max(multiple, round(n / multiple) * multiple) for n in (h, w)]
    if fit != [h, w]:
        x = F.interpolate(x, fit, mode="bicubic")
    y = generate(G, x, training)
    if fit != [h, w]:
        y = F.interpolate(y, (h, w), mode="bicubic")
    return from_pil(to_pil(y[0].float()))


def mixed_precision(amp, device):
    """(autocast context factory, GradScaler) for --amp. bf16 keeps float32's range, so it needs no
    loss scaling; fp16 does (small gradients underflow to 0), via the GradScaler, which the scripts checkpoint when it is
    enabled (its scale carries over on resume). Without --amp both are no-ops."""
    if amp and device.type != "cuda":
        print(f"--amp: ignored on {device.type} (autocast pays off on CUDA GPUs)")
    if not amp or device.type != "cuda":
        return contextlib.nullcontext, torch.amp.GradScaler("cuda", enabled=False)
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return (lambda: torch.autocast("cuda", dtype=dtype)), torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
