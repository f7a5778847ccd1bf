"""What a script's `train_step` calls, the same in all four: the optimizer (fused Adam) and its LR
schedule, the optimizer step with its checks (NaN guard, torchrun's gradient average, fp16 loss
scaling), and one net pass for several batches.

    opt_g = kit.adam(G.parameters(), args.lr, args.beta1)     # in main: the papers' Adam
    sched_g = kit.linear_decay_lr(opt_g, args.epochs, args.epochs_decay)
    ...
    kit.optimizer_step(opt_g, g_loss, scaler)                 # in train_step: every optimizer step
"""
import torch
from torch import nn

from . import distributed, guard


# --- one pass for several batches ---

def in_one_pass(net, *batches):
    """net(batch) for each batch, computed as one call on them stacked along the batch dimension.

    Only for nets that treat every image on its own -- instance norm, not batch norm (whose
    statistics would then span all the batches) -- where the results are the same as separate
    calls, to rounding. Fewer, larger calls: on CPU at batch 1, where a call's fixed costs weigh,
    CycleGAN's step runs its 12 net passes as 7 and takes a third less time.

    >>> net = torch.nn.Conv2d(3, 2, 3)
    >>> a, b = torch.randn(1, 3, 8, 8), torch.randn(2, 3, 8, 8)
    >>> out_a, out_b = in_one_pass(net, a, b)
    >>> out_b.shape, torch.allclose(out_a, net(a), atol=1e-6)
    (torch.Size([2, 2, 6, 6]), True)
    """
    return net(torch.cat(batches)).split([len(batch) for batch in batches])


# --- one optimizer step ---

def adam(params, lr, beta1, beta2=0.999):
    """Adam(lr, betas=(beta1, beta2)), the optimizer of all four papers, as one fused kernel.

    `fused=True` updates every parameter, its gradient and both moment estimates in one pass per
    step instead of the dozen small ops per tensor of torch's default on CPU (a for-loop over the
    parameters): 3x faster on the CycleGAN CPU recipe's 0.55M generator weights, 5x on the paper's
    22.8M, with the same update rule to rounding (1e-9 apart after one float32 step). Devices without a
    fused Adam get torch's default.

    >>> w = torch.nn.Parameter(torch.zeros(2))
    >>> opt = adam([w], lr=2e-4, beta1=0.5)
    >>> opt.defaults["betas"], opt.defaults["fused"]
    ((0.5, 0.999), True)
    """
    params = list(params)
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
    return torch.optim.Adam(params, lr=lr, betas=(beta1, beta2), fused=fused or None)


def optimizer_step(optimizer, loss, scaler=None):
    """Move `optimizer`'s parameters one step down `loss`: clear the old gradients, backpropagate,
    step. Every optimizer step of the four scripts goes through here, so what each one must do
    happens in one place. With an enabled fp16 GradScaler the loss is scaled before backward and the
    gradients unscaled before the step (the caller calls `scaler.update()` once per training step).

    >>> w = torch.nn.Parameter(torch.tensor([1.0]))
    >>> optimizer_step(torch.optim.SGD([w], lr=0.5), (w ** 2).sum())   # dw = 2w = 2: w - 0.5 * 2
    >>> w.item()
    0.0

    A NaN or infinite loss never reaches the weights: the run stops, or with --on-nan skip this
    optimizer step is skipped (guard.py; it costs one host sync).
    """
    optimizer.zero_grad(set_to_none=True)
    scaled = scaler is not None and scaler.is_enabled()
    if not guard.finite(loss, optimizer) and not scaled:
        return  # skipped (with fp16 loss scaling the GradScaler skips it: its gradients are not finite)
    (scaler.scale(loss) if scaled else loss).backward()
    # Under torchrun: the mean of every process's gradients, so that all take the same step. An
    # explicit all-reduce of exactly the parameters this optimizer updates, rather than wrapping the
    # nets in DistributedDataParallel: a GAN step runs D inside G's step with D frozen, has two
    # optimizers over different nets, and some steps leave a net out (pix2pix --loss l1 has no D);
    # DDP averages from hooks during each wrapped net's backward and expects every forward of it to
    # be followed by a backward reaching all its parameters (else find_unused_parameters, or
    # errors), and the scripts would have to call the wrappers. This is the same average, in one
    # place, with nets and scripts unchanged; what it gives up is DDP's overlap of communication
    # with the backward pass.
    distributed.average_gradients(optimizer)
    if scaled:
        scaler.step(optimizer)
    else:
        optimizer.step()


# --- schedules ---

def linear_decay_lr(optimizer, epochs, epochs_decay):
    """The reference code's linear LR policy, epoch for epoch: constant, then linearly to 0 over
    `epochs_decay` more epochs; call `.step()` at the end of every epoch.

    CycleGAN's paper (Zhu et al. 2017, sec. 4) keeps "the same learning rate for the first 100 epochs"
    and decays it "linearly ... to zero over the next 100"; the reference code trains pix2pix with
    the same schedule (n_epochs 100, n_epochs_decay 100, lr_policy linear). The reference implementation
    (pytorch-CycleGAN-and-pix2pix, `get_scheduler` in models/networks.py, called from train.py)
    steps its scheduler at the *start* of every epoch, the first one included, so its epoch k
    (1-based) runs at  1 - max(0, k + 1 - n_epochs) / (n_epochs_decay + 1).  We follow that sequence,
    not the prose, because the published results come from it: stepping at the end of each epoch
    instead, our 0-based epoch e = k - 1 runs at

        factor(e) = 1 - max(0, e + 2 - epochs) / (epochs_decay + 1)

    With 100 + 100 that is epochs 0..98 at the full LR, epoch 99 at 100/101, ..., epoch 198 at 1/101
    and the last, epoch 199, at 0: 99 full epochs, not 100, and the factors sum to 149, not 150.
    (With epochs_decay 0 the last epoch runs at 0 too, as in the reference.)

    >>> opt = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=1.0)
    >>> sched = linear_decay_lr(opt, epochs=2, epochs_decay=3)
    >>> lrs = []
    >>> for _ in range(5):
    ...     lrs.append(round(opt.param_groups[0]["lr"], 3)); opt.step(); sched.step()
    >>> lrs
    [1.0, 0.75, 0.5, 0.25, 0.0]
    """
    def factor(epoch):  # 0 from the last epoch on (the step after it would go below 0)
        return max(0.0, 1.0 - max(0, epoch + 2 - epochs) / (epochs_decay + 1))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
