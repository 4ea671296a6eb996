"""The training loop (Trainer): the objectives of bench.training.losses on the networks of
bench.methods, atomic resumable checkpoints, DDP under torchrun. The CLI is bench/train.py."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from bench import methods
from bench.core.process import prepare_process
from bench.core.records import copy_log_until, git_commit, package_versions
from bench.datasets.masks import load_mask_folder
from bench.datasets.training import TrainingStream, training_sources
from bench.methods.base import resolve_device
from bench.methods.checkpoints import (
    CheckpointError,
    checked_own,
    load_file,
    own_checkpoint,
    project_checkpoint,
)
from bench.methods.lbam.discriminator import TwoColumnDiscriminator
from bench.training import losses
from bench.training.checks import (
    TrainingError,
    changed_denormals,
    changed_settings,
    check_training_arguments,
    resume_deviations,
)
from bench.training.config import TrainConfig
from bench.training.distributed import Distributed, average_gradients, parameter_checksum
from bench.training.legacy_adam import LegacyAdam
from bench.training.storage import TrainLog, atomic_save
from bench.training.validation import VAL_LOG, bucket_means, curve_rows, validation_set, write_curve

CHECKPOINT = "checkpoint.pt"
LOG = "train_log.csv"


def resolve_vgg(config: TrainConfig) -> losses.VGG16Features | None:
    """VGG16 for the perceptual/style terms; the mini profile runs without them when the weights are
    absent (recorded as a deviation); the paper profile stops."""
    if config.perceptual == "none":
        config.deviations.append("perceptual and style terms off (--perceptual none)")
        return None
    try:
        weights = Path(config.vgg_weights) if config.vgg_weights else None
        return losses.VGG16Features(weights, config.vgg_input)
    except losses.VGGWeightsMissing as error:
        if config.profile == "paper":
            raise TrainingError(str(error)) from None
        note = "perceptual and style terms off: VGG16 ImageNet weights absent"
        print(f"note: {note}. {error}", file=sys.stderr)
        config.deviations.append(note)
        return None


class Trainer:
    def __init__(self, config: TrainConfig) -> None:
        self.config = config.resolve()
        check_training_arguments(self.config)
        self.process = prepare_process()  # before anything computes; recorded in the checkpoint
        device = resolve_device(config.device)
        self.dist = Distributed.from_environment(device)
        config.split_batch(self.dist.world)
        if device == "cuda" and self.dist.world > 1:
            device = f"cuda:{self.dist.local_rank}"
        if config.amp != "none" and not device.startswith("cuda"):
            raise TrainingError(f"--amp {config.amp} is for CUDA; this run is on {device}")
        self.device = torch.device(device)
        self.out = Path(config.out)
        torch.manual_seed(config.seed)
        self.method = methods.create(config.method, device=device, **config.method_options())
        self.generator = self.method.net
        self.discriminator = (
            TwoColumnDiscriminator(config.size, config.width).to(self.device) if config.adversarial else None
        )
        if config.channels_last:
            self.generator.to(memory_format=torch.channels_last)
        if config.subpixel_decoder:
            self.generator.subpixel_decoder = True
        self.vgg = resolve_vgg(config)
        if self.vgg is not None:
            self.vgg.to(self.device)
        self.ids, self.sources = training_sources(config.dataset, config.data_root)
        config.resolve_steps(len(self.sources))
        self.total_steps = config.steps + config.finetune_steps
        if self.total_steps == 0:
            raise TrainingError(
                "--steps 0 with no fine-tuning steps leaves nothing to train: give --steps 1 or more"
            )
        self.mask_folder = (
            load_mask_folder(config.mask_folder, config.size, buckets_only=False)
            if config.mask_folder
            else None
        )
        fused = {"fused": True} if config.fused_adam else {}  # else torch's choice for the device
        self.optimizer_g = torch.optim.Adam(
            [p for p in self.generator.parameters() if p.requires_grad],
            lr=config.lr_g,
            betas=config.betas_g,
            **fused,
        )
        self.optimizer_d: torch.optim.Optimizer | None = None
        if self.discriminator is not None:  # the release's D update keeps torch 1.4's Adam
            adam_d = (
                LegacyAdam if config.d_update == "legacy" else functools.partial(torch.optim.Adam, **fused)
            )
            self.optimizer_d = adam_d(self.discriminator.parameters(), lr=config.lr_d, betas=config.betas_d)
        self.step = 0
        validation = config.val_dataset
        self.validation = validation_set(validation, config.size, config.data_root) if validation else None
        self.curve: list[dict[str, Any]] = []
        self.reference = (  # Telea on the same pairs: the line a learned model has to clear
            bucket_means(methods.create("telea").predict, self.validation, torch.device("cpu"))
            if self.validation is not None and self.dist.main
            else None
        )
        self.git_commits = [git_commit()]  # at start: the code this process trains with
        self.scaler = torch.amp.GradScaler(enabled=config.amp == "fp16")
        self.model = (
            DistributedDataParallel(
                self.generator, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
            if self.dist.world > 1
            else self.generator
        )

    # checkpoints ---------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return project_checkpoint(
            self.config.method,
            dataclasses.asdict(self.method.config),
            self.generator.state_dict(),
            discriminator=self.discriminator.state_dict() if self.discriminator is not None else None,
            optimizer_g=self.optimizer_g.state_dict(),
            optimizer_d=self.optimizer_d.state_dict() if self.optimizer_d is not None else None,
            step=self.step,
            rng={"torch": torch.get_rng_state(), "numpy_seed": self.config.seed},
            train_config=dataclasses.asdict(self.config),
            vgg=self.vgg.source if self.vgg is not None else "absent",
            validation=self.validation_record(),
            versions=package_versions(),
            trained_on=self.trained_on(),
            # oneDNN splits weight-gradient sums by thread: a bit-for-bit rerun needs the same count
            cpu_threads=torch.get_num_threads() if self.device.type == "cpu" else None,
            process=self.process,
            git_commit=self.git_commits[-1],
            git_commits=self.git_commits,  # every commit the training ran under, first to last
        )

    def trained_on(self) -> str:
        """The hardware of this run, for the record: a GPU's name, or the CPU with its threads."""
        if self.device.type == "cuda":
            return f"cuda: {torch.cuda.get_device_name(self.device)} × {self.dist.world}"
        return f"cpu: {platform.machine()}, {torch.get_num_threads()} threads × {self.dist.world}"

    def save(self) -> None:
        if self.dist.main:
            atomic_save(self.state(), self.out / CHECKPOINT)

    def resume(self) -> None:
        path = self.out / CHECKPOINT
        data = load_file(path)
        if not own_checkpoint(data):
            raise CheckpointError(f"{path} is not a {self.config.method} training checkpoint of this project")
        checked_own(data, str(path), self.config.method)
        stored, current = (
            {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}
            for settings in (data.get("train_config") or {}, dataclasses.asdict(self.config))
        )
        changed = changed_settings(stored, current) + changed_denormals(data.get("process"), self.process)
        if changed:
            raise TrainingError(
                f"--resume with other settings than {path} was trained with ({'; '.join(changed)}); "
                "resume with the same settings, or train into another --out"
            )
        if data["options"] != dataclasses.asdict(self.method.config):
            raise CheckpointError(
                f"{path} was trained with {data['options']}, not {dataclasses.asdict(self.method.config)}"
            )
        self.generator.load_state_dict(data["generator"])
        self.optimizer_g.load_state_dict(data["optimizer_g"])
        if self.discriminator is not None:
            self.discriminator.load_state_dict(data["discriminator"])
            self.optimizer_d.load_state_dict(data["optimizer_d"])
        torch.set_rng_state(data["rng"]["torch"])
        self.step = int(data["step"])
        earlier = data.get("git_commits") or [data.get("git_commit", "unknown")]
        self.git_commits = earlier + [c for c in self.git_commits if c != earlier[-1]]
        self.curve = list((data.get("validation") or {}).get("curve", []))
        self.config.deviations[:] = resume_deviations(stored, current, self.step)
        for optimizer, rate in ((self.optimizer_g, self.config.lr_g), (self.optimizer_d, self.config.lr_d)):
            for group in optimizer.param_groups if optimizer is not None else []:
                group["lr"] = rate  # the stored state holds the old rate (stage 2 sets its own)
        self.trim_log()

    def trim_log(self) -> None:
        """Drop log rows written after the checkpoint (they will be written again)."""
        log = self.out / LOG
        if self.dist.main and log.exists():
            copy_log_until(log, self.step, log)

    # one step --------------------------------------------------------------------------------
    def autocast(self) -> contextlib.AbstractContextManager:
        if self.config.amp == "none":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.config.amp == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def generator_output(self, image: Tensor, mask: Tensor) -> Tensor:
        inputs = self.method.network_inputs(image, mask)
        if self.config.channels_last:
            inputs = tuple(x.contiguous(memory_format=torch.channels_last) for x in inputs)
        return self.method.to_image_space(self.model(*inputs))

    def train_step(self, image: Tensor, mask: Tensor) -> dict[str, float]:
        mask3 = mask.expand(-1, 3, -1, -1)
        with self.autocast():
            output = self.generator_output(image, mask)
        output = output.float()
        logged: dict[str, float] = {}
        terms = losses.generator_terms(self.config.objective, image, mask3, output, self.vgg)
        if self.discriminator is not None:
            terms["adversarial"] = self.discriminator_step(image, mask3, output, logged)
        total = sum(terms.values())
        self.check_finite({**terms, "total": total})
        self.optimizer_g.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        self.scaler.step(self.optimizer_g)
        self.scaler.update()
        logged.update({name: value.item() for name, value in terms.items()})
        logged["total"] = total.item()
        return logged

    def discriminator_step(self, image: Tensor, mask3: Tensor, output: Tensor, logged: dict) -> Tensor:
        """One D step (the release's order: D first), then G's adversarial term. `recompute`: D(fake)
        evaluated again after the step. `legacy`: the pre-step D(fake), back-propagated through the
        weights LegacyAdam updated in place, as torch ≤ 1.4 ran the release."""
        config, objective, discriminator = self.config, self.config.objective, self.discriminator
        self.optimizer_d.zero_grad(set_to_none=True)
        d_real = discriminator(image, mask3)
        d_fake = discriminator(output if config.d_update == "legacy" else output.detach(), mask3)
        # ε per item of the global batch, so any number of ranks draws what one process would
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + self.step)
        epsilon = torch.rand(config.batch_size, generator=generator)[self.dist.rank :: self.dist.world]
        penalty = losses.gradient_penalty(discriminator, image, output.detach(), mask3, epsilon)
        d_loss = losses.discriminator_loss(objective, d_real, d_fake, penalty)
        self.check_finite({"discriminator": d_loss})
        d_parameters = list(discriminator.parameters())
        d_loss.backward(inputs=d_parameters, retain_graph=config.d_update == "legacy")
        average_gradients(discriminator, self.dist.world)
        self.optimizer_d.step()
        logged["d_loss"], logged["gradient_penalty"] = d_loss.item(), penalty.item()
        if config.d_update == "legacy":
            return losses.generator_adversarial(objective, d_fake)
        discriminator.requires_grad_(False)
        adversarial = losses.generator_adversarial(objective, discriminator(output, mask3))
        discriminator.requires_grad_(True)
        return adversarial

    def check_finite(self, values: dict[str, Tensor]) -> None:
        bad = {k: v.item() for k, v in values.items() if not torch.isfinite(v).all()}
        if bad:
            kept = self.out / CHECKPOINT
            advice = (
                f"the last good checkpoint {kept} is unchanged: run the same command with --resume and a "
                "lower --lr-g/--lr-d (recorded as a deviation)"
                if kept.exists()
                else "no checkpoint was written yet: run again with a lower --lr-g/--lr-d"
            )
            raise TrainingError(
                f"non-finite loss at step {self.step + 1}: {bad}. Training stopped; {advice}, or check "
                "the data."
            )

    def enter_finetuning(self) -> None:
        """PConv stage 2 (Liu et al. Sec. 4.1): lr 5e-5, encoder BN frozen."""
        self.generator.freeze_encoder_bn = True
        self.generator.train()
        for group in self.optimizer_g.param_groups:
            group["lr"] = self.config.finetune_lr

    # the loop --------------------------------------------------------------------------------
    def loader(self) -> DataLoader:
        config, world = self.config, self.dist.world
        per_step = config.batch_size  # global; each rank takes rank_batch_size of it
        stream = TrainingStream(
            self.sources,
            config.size,
            config.resize_short,
            config.seed,
            start=self.step * per_step,
            length=(self.total_steps - self.step) * per_step,
            mask_folder=self.mask_folder,
            mask_folder_fraction=config.mask_folder_fraction,
            crop_scale_max=config.crop_scale_max,
            free_form_fraction=config.free_form_fraction,
            reading=config.data_reading,
        )
        sampler = DistributedSampler(stream, world, self.dist.rank, shuffle=False) if world > 1 else None
        return DataLoader(
            stream, batch_size=config.rank_batch_size, sampler=sampler, num_workers=config.workers
        )

    def start(self, resume: bool) -> None:
        """A fresh start (refused over an existing checkpoint) or a resume of <out>/checkpoint.pt."""
        if (self.out / CHECKPOINT).exists() and not resume:
            raise TrainingError(
                f"{self.out / CHECKPOINT} exists: pass --resume to continue it, or choose another --out"
            )
        if resume:
            if not (self.out / CHECKPOINT).exists():
                raise TrainingError(f"--resume: no checkpoint at {self.out / CHECKPOINT}")
            self.resume()
        elif self.dist.main:
            (self.out / LOG).unlink(missing_ok=True)  # rows of a run killed before its first checkpoint
        self.out.mkdir(parents=True, exist_ok=True)
        self.generator.train()
        if self.discriminator is not None:
            self.discriminator.train()
        if self.config.finetune_steps and self.step >= self.config.steps:  # stage 2 (PConv) under way
            self.enter_finetuning()
        if self.validation is not None and not self.curve:
            self.validate()  # the curve's start: the untrained network

    def run(
        self, resume: bool = False, stop_after: int | None = None, progress: bool = True
    ) -> dict[str, Any]:
        config = self.config
        if stop_after is not None and stop_after < 1:
            raise TrainingError(f"--stop-after must be 1 or more, got {stop_after}")
        self.start(resume)
        last_step = self.total_steps if stop_after is None else min(self.total_steps, self.step + stop_after)
        bar = tqdm(
            total=last_step - self.step,
            desc=f"train {config.method}",
            unit="step",
            disable=not (progress and self.dist.main),
        )
        start = time.perf_counter()
        with TrainLog(self.out / LOG if self.dist.main else None) as log, bar:
            for image, mask in self.loader():
                if self.step >= last_step:
                    break
                if config.finetune_steps and self.step == config.steps:
                    self.enter_finetuning()
                self.schedule_lr()
                logged = self.train_step(image.to(self.device), mask.to(self.device))
                self.step += 1
                lr_g = self.optimizer_g.param_groups[0]["lr"]
                seconds = round(time.perf_counter() - start, 3)
                log.write({"step": self.step, **logged, "lr_g": lr_g, "seconds": seconds})
                bar.update(1)
                shown = ("total", "d_loss", "hole", "l1")
                bar.set_postfix({k: f"{v:.3g}" for k, v in logged.items() if k in shown})
                if self.validation is not None and (
                    self.step % config.val_every == 0 or self.step == self.total_steps
                ):
                    self.validate()
                if self.step % config.checkpoint_every == 0 or self.step == last_step:
                    self.save()
        return self.summary()

    def schedule_lr(self) -> None:
        """lr_g of the main stage from TrainConfig.lr_factor (a pure function of the step)."""
        if self.step < self.config.steps:
            for group in self.optimizer_g.param_groups:
                group["lr"] = self.config.lr_g * self.config.lr_factor(self.step)

    def validate(self) -> None:
        """Score the generator on the validation pairs now (eval mode), log and keep the row."""
        if not self.dist.main:
            return
        self.generator.eval()
        means = bucket_means(self.method.predict, self.validation, self.device)
        self.generator.train()
        if self.config.finetune_steps and self.step > self.config.steps:
            self.enter_finetuning()  # re-freezes the encoder's BN that train() released
        self.curve = [row for row in self.curve if row["step"] != self.step] + curve_rows(self.step, means)
        write_curve(self.out / VAL_LOG, self.curve)

    def validation_record(self) -> dict[str, Any] | None:
        if self.validation is None:
            return None
        return {
            "dataset": self.config.val_dataset,
            "pairs": self.validation.digest,
            "curve": self.curve,
            "telea": self.reference,
        }

    def summary(self) -> dict[str, Any]:
        """Where training stands, with a checksum of G per rank (ranks must agree under DDP)."""
        summary = {
            "step": self.step,
            "total_steps": self.total_steps,
            "checkpoint": str(self.out / CHECKPOINT) if (self.out / CHECKPOINT).is_file() else None,
            "deviations": self.config.deviations,
            "world": self.dist.world,
            "checksum": parameter_checksum(self.generator),
            "process": self.process,
        }
        if self.dist.world > 1:
            gathered = [None] * self.dist.world
            dist.all_gather_object(gathered, summary["checksum"])
            summary["rank_checksums"] = gathered
            summary["ranks_in_sync"] = all(
                abs(c - gathered[0]) <= 1e-9 * max(1.0, abs(gathered[0])) for c in gathered
            )
        return summary
