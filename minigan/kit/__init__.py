"""The training kit the four `train_*.py` scripts share: the run itself (`run`: device, seeds, init,
logging, exact resume), what a training step calls (`step`: fused Adam, the optimizer step, the LR
schedule, one pass for several batches), the shared flags and --resume's rules
(`flags`), the data order (`order`), checkpoints written atomically (`checkpoint`), loss
plots (`plot`), the run report index.html (`report`), the MNIST quality score (`mnist_score`), the
note a long CPU run prints (`cpu_guide`), several processes under torchrun (`distributed`), CycleGAN's
image pool (`image_pool`), and the after-training tools for noise-to-image (`latent`) and
image-to-image (`image2image`) scripts.

The kit drives the loop -- data (`minigan.data`) -> nets (`minigan.nets`) -> losses (`minigan.losses`)
-> optimizer steps -- while each GAN's step stays visible in its script. It imports no script and no
test. `from minigan import kit` gives the main names of `run`, `step`, `flags` and `order` directly
(`kit.Run`, `kit.adam`, `kit.parser`, ...).
"""
from .distributed import is_main
from .flags import SESSION_FLAGS, Parser, add_common_args, parse_args, parser
from .order import SeededBatches, epoch_loader, mix, seed_worker
from .run import (CONV_LAYERS, NORM_LAYERS, Run, compile_nets, generate, init_weights, pick_device, run_main,
                  seed_everything)
from .step import adam, in_one_pass, linear_decay_lr, optimizer_step

__all__ = ["CONV_LAYERS", "NORM_LAYERS", "SESSION_FLAGS", "Parser", "Run", "SeededBatches", "adam",
           "add_common_args", "compile_nets", "epoch_loader", "generate", "in_one_pass", "init_weights", "is_main",
           "linear_decay_lr", "mix", "optimizer_step", "parse_args", "parser", "pick_device", "run_main",
           "seed_everything", "seed_worker"]
