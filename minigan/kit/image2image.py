"""What the two image-to-image scripts (train_pix2pix.py, train_cyclegan.py) share: the papers' jitter
sizes, translating image files at full size, mixed precision.

Both papers (Isola et al. 2017, Zhu et al. 2017) resize every training image to 286x286 and take a
random 256x256 crop (plus a random horizontal flip): "random jitter". At another --image-size S the
scripts keep the ratio: load S*286/256, crop S.
"""
import contextlib
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import MiniganError
from ..data.images import EXTENSIONS, from_pil, image_files, load_image, save_image
from .distributed import is_main
from .run import generate

LOAD, CROP = 286, 256  # resize to 286, random crop 256: the papers' jitter


def add_translation_args(parser):
    g = parser.add_argument_group("translating and speed")
    g.add_argument("--translate", metavar="DIR_OR_FILE", help="translate these images with the generator of "
                   "--checkpoint/--resume or --init-from, write them to <run dir>/translated/, and exit")
    g.add_argument("--init-from", metavar="FILE.pth", help="start G (CycleGAN: the --direction one) from the "
                   "reference implementation's published weights: a state_dict file, or a dict holding one under "
                   "'state_dict'; not used when a checkpoint is loaded")
    g.add_argument("--amp", action="store_true", help="mixed precision on CUDA: bf16 autocast (fp16 with loss "
                   "scaling on GPUs without bf16); ignored on CPU")
    g.add_argument("--channels-last", action="store_true",
                   help="keep nets and images in channels_last (NHWC) memory: faster convolutions on CUDA")


@torch.no_grad()
def translate_files(G, args, ckpt, folder, multiple, device, training=False):
    """G on every image of --translate (a file or a folder, searched recursively), at full size: an
    image is resized to the nearest size G accepts (multiples of `multiple`), translated and resized
    back; the outputs keep the inputs' relative paths, as .png, in <folder>/translated/. Each image
    is a batch of its own; `training` as in `generate` (True: pix2pix's test-time protocol)."""
    if ckpt is None and not args.init_from:
        raise MiniganError("--translate needs trained weights: pass --checkpoint RUN_DIR or --init-from FILE.pth")
    source = Path(args.translate)
    files = [source] if source.is_file() else image_files(source)
    if not files:
        raise MiniganError(f"--translate {source}: no images ({EXTENSIONS}) there")
    if not is_main():  # under torchrun: once, by rank 0
        return
    for path in files:
        x = from_pil(load_image(path)).unsqueeze(0).to(device)              # 1 x 3 x H x W
        h, w = x.shape[-2:]
        size = [max(multiple, round(n / multiple) * multiple) for n in (h, w)]
        y = generate(G, F.interpolate(x, size, mode="bicubic") if size != [h, w] else x, training)
        y = F.interpolate(y, (h, w), mode="bicubic") if size != [h, w] else y  # 1 x 3 x H x W
        out = folder / "translated" / (path.relative_to(source) if path != source else path.name)
        save_image(y[0].float(), out.with_suffix(".png"))
    print(f"translated {len(files)} image(s) into {folder / 'translated'}/")


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
