"""Honest guidance on a CPU: say early when a run would take many hours, and what to run instead.

The papers' settings are GPU jobs: `python train_cyclegan.py --data horse2zebra` on a 2-core CPU is
266,800 steps of ~12 s (tqdm's ETA: ~900 hours) and nothing else would tell a new user so. A run on
the CPU therefore times its first steps (the very first one, with its one-off costs, is left out) and,
when the whole run would take more than HOURS hours, prints once the estimate and its script's CPU
recipe, a run measured to show the method working in well under an hour. Then it continues as asked.

>>> message = advice("cyclegan", {"data": "horse2zebra"}, seconds_per_step=12.0, steps=266_800)
>>> print(message.splitlines()[0])
note: on this CPU the run needs about 889 hours (12 s a step, 266,800 steps); it continues as asked.
>>> advice("cyclegan", {"data": "horse2zebra"}, seconds_per_step=0.13, steps=5336) is None
True
"""
import time

from tqdm import tqdm

HOURS = 3             # "more than a few hours"
WARMUP, TIMED = 1, 3  # steps left out (allocation, first-call costs), then steps timed

# script -> (the CPU recipe, what it is measured to do), as measured on a 2-core x86-64 CPU (README)
RECIPES = {
    "cyclegan": ("python train_cyclegan.py --data {data} --image-size 64 --ngf 16 --ndf 32 --n-blocks 3 "
                 "--epochs 4 --epochs-decay 1",
                 "64x64 crops, small nets: 0.13 s a step on 2 idle cores, about 3 minutes an epoch of "
                 "horse2zebra; the first crude stripes on the horses appear at epochs 2-3"),
    "pix2pix": ("python train_pix2pix.py --data {data} --generator toy --image-size 64 --ndf 32",
                "the course's toy U-Net at 64x64: 0.038 s a step on 2 idle cores, facades' 200 epochs "
                "in under an hour"),
    "dcgan": ("python train_dcgan.py --data {data} --batch-size 32 --epochs 2",
              "batch 32 takes 0.46 s a step on 2 cores (1.84 s at 128): four times the updates in the "
              "same time; anime-face layouts show after ~400 steps"),
}


def advice(script, args, seconds_per_step, steps):
    """The note for a CPU run of `steps` steps at `seconds_per_step`, or None if it is short enough
    (or the script has no CPU recipe)."""
    hours = seconds_per_step * steps / 3600
    if hours <= HOURS or script not in RECIPES:
        return None
    command, what = RECIPES[script]
    return (f"note: on this CPU the run needs about {hours:,.0f} hours ({seconds_per_step:.2g} s a step, "
            f"{steps:,} steps); it continues as asked.\n"
            f"      The CPU recipe ({what}):\n"
            f"      {command.format(**args)}")


class CpuGuide:
    """Call step_done() after each training step: on the CPU, after WARMUP + TIMED steps, the advice
    (if any) is printed once."""

    def __init__(self, script, args, device, steps_left):
        self.script, self.args, self.steps_left = script, vars(args), steps_left
        self.active = device.type == "cpu" and script in RECIPES and steps_left > WARMUP + TIMED
        self.done, self.start = 0, None

    def step_done(self):
        if not self.active:
            return
        self.done += 1
        if self.done == WARMUP:
            self.start = time.perf_counter()
        elif self.done == WARMUP + TIMED:
            self.active = False
            message = advice(self.script, self.args, (time.perf_counter() - self.start) / TIMED, self.steps_left)
            if message:
                tqdm.write(message)
