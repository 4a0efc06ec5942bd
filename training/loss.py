"""StyleGAN2 loss as used by StyleGAN2-ADA: non-saturating logistic loss, lazy R1 on reals,
optional path-length regularisation and style mixing.

Phases: 'Gmain' (G adversarial), 'Greg' (path length), 'Gboth'; 'Dmain' (D adversarial),
'Dreg' (R1), 'Dboth'. The training loop runs each phase on its own interval; `gain` is
that interval, so a lazily applied regulariser keeps its average strength.
"""

import numpy as np
import torch

from torch_utils import training_stats
from torch_utils.ops import conv2d_gradfix

#----------------------------------------------------------------------------

class StyleGAN2Loss:
    def __init__(self, device, G, D, augment_pipe=None, r1_gamma=10, style_mixing_prob=0.9, pl_weight=2,
            pl_batch_shrink=2, pl_decay=0.01, pl_no_weight_grad=False, compiled=None, precision='full'):
        self.device = device
        self.G = G
        self.D = D
        self.compiled = compiled # training.compilation.CompiledNetworks for the first-order phases, or None.
        self.augment_pipe = augment_pipe
        self.r1_gamma = r1_gamma
        self.style_mixing_prob = style_mixing_prob
        self.pl_weight = pl_weight
        self.pl_batch_shrink = pl_batch_shrink
        self.pl_decay = pl_decay
        self.pl_no_weight_grad = pl_no_weight_grad
        self.precision = precision # Of G's synthesis and D: 'full' (published: float32), 'reduced' or 'auto' (training/precision.py).
        self.pl_mean = torch.zeros([], device=device)
        # Sign of D's output on (augmented) reals since the loop last drained them (ADA).
        self.real_sign_sum = torch.zeros([], device=device)
        self.real_sign_count = torch.zeros([], device=device)

    def state_dict(self):
        return dict(pl_mean=self.pl_mean.cpu())

    def load_state_dict(self, state):
        self.pl_mean.copy_(state['pl_mean'])

    def drain_real_signs(self):
        """(sum of sign(D(real)), count) since the last call; resets both."""
        tally = self.real_sign_sum.clone(), self.real_sign_count.clone()
        self.real_sign_sum.zero_()
        self.real_sign_count.zero_()
        return tally

    def run_G(self, z, c, eager=False):
        """Fakes and their ws. As published, every phase's mapping of z moves w_avg (the
        second latent of style mixing does not)."""
        G = self.G if eager or self.compiled is None else self.compiled.G
        ws = G.mapping(z, c, update_emas=True)
        if self.style_mixing_prob > 0:
            # Swap the w's from a random cutoff on (for a random subset of batches) to a second latent.
            with torch.autograd.profiler.record_function('style_mixing'):
                cutoff = torch.empty([], dtype=torch.int64, device=ws.device).random_(1, ws.shape[1])
                cutoff = torch.where(torch.rand([], device=ws.device) < self.style_mixing_prob, cutoff, torch.full_like(cutoff, ws.shape[1]))
                mixed = G.mapping(torch.randn_like(z), c, update_emas=False)
                keep = torch.arange(ws.shape[1], device=ws.device)[None, :, None] < cutoff
                ws = torch.where(keep, ws, mixed)
        img = G.synthesis(ws, precision=self.precision)
        return img, ws

    def run_D(self, img, c, eager=False):
        if self.augment_pipe is not None:
            img = self.augment_pipe(img)
        D = self.D if eager or self.compiled is None else self.compiled.D
        return D(img, c, precision=self.precision)

    def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, gain, cur_nimg=None):
        assert phase in ['Gmain', 'Greg', 'Gboth', 'Dmain', 'Dreg', 'Dboth']
        if self.pl_weight == 0:
            phase = {'Greg': 'none', 'Gboth': 'Gmain'}.get(phase, phase)
        if self.r1_gamma == 0:
            phase = {'Dreg': 'none', 'Dboth': 'Dmain'}.get(phase, phase)
        do_Gmain = phase in ['Gmain', 'Gboth']
        do_Dmain = phase in ['Dmain', 'Dboth']
        do_Gpl = phase in ['Greg', 'Gboth']
        do_Dr1 = phase in ['Dreg', 'Dboth']

        if do_Gmain:
            self._G_main(gen_z, gen_c, gain)
        if do_Gpl:
            self._G_path_length(gen_z, gen_c, gain)
        loss_Dgen = self._D_fakes(gen_z, gen_c, gain) if do_Dmain else None
        if do_Dmain or do_Dr1:
            self._D_reals(real_img, real_c, gain, loss_Dgen, do_Dr1)

    def _G_main(self, gen_z, gen_c, gain):
        """Gmain: make D call the fakes real."""
        with torch.autograd.profiler.record_function('Gmain_forward'):
            gen_img, _gen_ws = self.run_G(gen_z, gen_c)
            gen_logits = self.run_D(gen_img, gen_c)
            training_stats.report('Loss/scores/fake', gen_logits)
            training_stats.report('Loss/signs/fake', gen_logits.sign())
            loss_Gmain = torch.nn.functional.softplus(-gen_logits)
            training_stats.report('Loss/G/loss', loss_Gmain)
        with torch.autograd.profiler.record_function('Gmain_backward'):
            loss_Gmain.mean().mul(gain).backward()

    def _G_path_length(self, gen_z, gen_c, gain):
        """Greg: path-length penalty, on a shrunk batch. Differentiating a gradient: G's fused
        attention recomputes itself differentiably under create_graph (see the networks_Generator
        docstring), and the eager G is used (compiled graphs have no double backward)."""
        with torch.autograd.profiler.record_function('Gpl_forward'):
            batch_size = max(gen_z.shape[0] // self.pl_batch_shrink, 1)
            gen_img, gen_ws = self.run_G(gen_z[:batch_size], gen_c[:batch_size], eager=True)
            pl_noise = torch.randn_like(gen_img) / np.sqrt(gen_img.shape[2] * gen_img.shape[3])
            with conv2d_gradfix.no_weight_gradients(self.pl_no_weight_grad):
                pl_grads = torch.autograd.grad(outputs=[(gen_img * pl_noise).sum()], inputs=[gen_ws], create_graph=True, only_inputs=True)[0]
            pl_lengths = pl_grads.square().sum(2).mean(1).sqrt()
            pl_mean = self.pl_mean.lerp(pl_lengths.mean(), self.pl_decay)
            self.pl_mean.copy_(pl_mean.detach())
            pl_penalty = (pl_lengths - pl_mean).square()
            training_stats.report('Loss/pl_penalty', pl_penalty)
            loss_Gpl = pl_penalty * self.pl_weight
            training_stats.report('Loss/G/reg', loss_Gpl)
        with torch.autograd.profiler.record_function('Gpl_backward'):
            # The zero term keeps every synthesis parameter in the graph.
            (gen_img[:, 0, 0, 0] * 0 + loss_Gpl).mean().mul(gain).backward()

    def _D_fakes(self, gen_z, gen_c, gain):
        """Dmain, fakes: make D call them fake. Returns the loss, reported with the reals' part."""
        with torch.autograd.profiler.record_function('Dgen_forward'):
            gen_img, _gen_ws = self.run_G(gen_z, gen_c)
            gen_logits = self.run_D(gen_img, gen_c)
            training_stats.report('Loss/scores/fake', gen_logits)
            training_stats.report('Loss/signs/fake', gen_logits.sign())
            loss_Dgen = torch.nn.functional.softplus(gen_logits)
        with torch.autograd.profiler.record_function('Dgen_backward'):
            loss_Dgen.mean().mul(gain).backward()
        return loss_Dgen

    def _D_reals(self, real_img, real_c, gain, loss_Dgen, do_Dr1):
        """Dmain on reals (when loss_Dgen is given) and/or Dreg: R1 on reals (eager D: double backward)."""
        do_Dmain = loss_Dgen is not None
        name = 'Dreal_Dr1' if do_Dmain and do_Dr1 else 'Dreal' if do_Dmain else 'Dr1'
        with torch.autograd.profiler.record_function(name + '_forward'):
            real_img_tmp = real_img.detach().requires_grad_(do_Dr1)
            real_logits = self.run_D(real_img_tmp, real_c, eager=do_Dr1)
            training_stats.report('Loss/scores/real', real_logits)
            training_stats.report('Loss/signs/real', real_logits.sign())
            self.real_sign_sum += real_logits.detach().sign().sum()
            self.real_sign_count += real_logits.shape[0]

            loss_Dreal = 0
            if do_Dmain:
                loss_Dreal = torch.nn.functional.softplus(-real_logits)
                training_stats.report('Loss/D/loss', loss_Dgen + loss_Dreal)

            loss_Dr1 = 0
            if do_Dr1:
                with conv2d_gradfix.no_weight_gradients():
                    r1_grads = torch.autograd.grad(outputs=[real_logits.sum()], inputs=[real_img_tmp], create_graph=True, only_inputs=True)[0]
                r1_penalty = r1_grads.square().sum([1, 2, 3])
                loss_Dr1 = r1_penalty * (self.r1_gamma / 2)
                training_stats.report('Loss/r1_penalty', r1_penalty)
                training_stats.report('Loss/D/reg', loss_Dr1)

        with torch.autograd.profiler.record_function(name + '_backward'):
            # The zero term keeps D's output layer in the graph: its bias gets a zero gradient
            # under R1 alone, so Adam steps it (its moments decay) as in the published loop.
            (real_logits * 0 + loss_Dreal + loss_Dr1).mean().mul(gain).backward()

#----------------------------------------------------------------------------
