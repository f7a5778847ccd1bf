"""The image history buffer (Shrivastava et al. 2017), as CycleGAN uses it.

The discriminator is updated on a mix of the newest fakes and fakes from earlier generators, so it
does not forget what old mistakes looked like and the two players oscillate less. For each new
image, one at a time:

    pool not full yet:  store it and return it
    pool full:          with p = 1/2 return a random stored image and store the new one in its place,
                        otherwise return the new image (the pool is unchanged)

The coin flips and slot choices use torch's global generator, so a checkpoint's RNG state plus the
pool's `state_dict()` resume it exactly.

>>> _ = torch.manual_seed(0)
>>> pool = ImagePool(size=2)
>>> first = pool.query(torch.zeros(2, 1, 1, 1))      # fills the pool, returns the images unchanged
>>> first.flatten().tolist(), len(pool.images)
([0.0, 0.0], 2)
>>> out = pool.query(torch.ones(4, 1, 1, 1))         # about half of these come from the pool
>>> sorted(out.flatten().tolist())
[0.0, 0.0, 1.0, 1.0]
>>> ImagePool(size=0).query(torch.ones(1, 1, 1, 1)).item()  # size 0 switches the pool off
1.0
"""
import torch


class ImagePool:
    """A buffer of up to `size` earlier fakes; 50 in the CycleGAN paper (Zhu et al. 2017, sec. 4)."""

    def __init__(self, size=50):
        if size < 0:
            raise ValueError(f"ImagePool size must be >= 0, got {size}")
        self.size = size
        self.images = []  # each C x H x W, detached, on the device of the fakes

    def query(self, fakes):
        """Images to show the discriminator in place of the batch `fakes` (N x C x H x W), detached."""
        fakes = fakes.detach()
        if self.size == 0:
            return fakes
        if self.images and self.images[0].device != fakes.device:  # e.g. just loaded from a checkpoint
            self.images = [image.to(fakes.device) for image in self.images]
        out = []
        for image in fakes:
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand(()).item() < 0.5:
                slot = int(torch.randint(self.size, ()).item())
                out.append(self.images[slot])      # an old fake goes to D ...
                self.images[slot] = image.clone()  # ... and the new one takes its place
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self):
        # a list of tensors plus an int: loads with torch.load(weights_only=True). The images stay where
        # they are (no copy to the CPU: the run keeps a copy of its state before every step, guard.py)
        return {"size": self.size, "images": list(self.images)}

    def load_state_dict(self, state):
        if state["size"] != self.size:
            raise ValueError(f"ImagePool size {self.size} does not match the saved size {state['size']}")
        self.images = [image.clone() for image in state["images"]]
