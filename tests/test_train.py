from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from bench import methods
from bench.core.process import prepare_process
from bench.methods.lbam import ABLATIONS
from bench.train import main as train_main
from bench.training import losses
from bench.training.config import TrainConfig
from bench.training.legacy_adam import LegacyAdam
from bench.training.trainer import CHECKPOINT, LOG, Trainer, TrainingError

ROOT = Path(__file__).resolve().parents[1]
TINY = {"width": 0.0625, "size": 128, "resize_short": 144, "batch_size": 2, "device": "cpu"}
TINY_CLI = ["--method", "lbam", "--width", "0.0625", "--size", "128", "--device", "cpu", "--no-progress"]


@pytest.fixture(autouse=True)
def no_vgg(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # no VGG16 file: mini runs without


def trainer(tmp_path: Path, name: str = "run", **options) -> Trainer:
    return Trainer(
        TrainConfig(**{**TINY, "steps": 4, "checkpoint_every": 2, "out": str(tmp_path / name), **options})
    )


def weights(path: Path) -> dict[str, torch.Tensor]:
    data = torch.load(path, weights_only=True)
    return {
        **{f"G.{k}": v for k, v in data["generator"].items()},
        **{f"D.{k}": v for k, v in (data["discriminator"] or {}).items()},
    }


@pytest.mark.parametrize("method", ["lbam", "pconv"])
def test_resumed_training_gives_identical_weights(tmp_path, method):
    trainer(tmp_path, "straight", method=method).run(progress=False)
    trainer(tmp_path, "split", method=method).run(stop_after=2, progress=False)
    assert torch.load(tmp_path / "split" / CHECKPOINT, weights_only=True)["step"] == 2
    trainer(tmp_path, "split", method=method).run(resume=True, progress=False)
    straight, split = weights(tmp_path / "straight" / CHECKPOINT), weights(tmp_path / "split" / CHECKPOINT)
    assert straight.keys() == split.keys()
    for key in straight:
        assert torch.equal(straight[key], split[key]), key
    log = (tmp_path / "split" / LOG).read_text().splitlines()
    assert [line.split(",")[0] for line in log[1:]] == ["1", "2", "3", "4"] + (
        ["5"] if method == "pconv" else []
    )


def test_checkpoint_records_config_and_deviations(tmp_path):
    trainer(tmp_path).run(progress=False)
    data = torch.load(tmp_path / "run" / CHECKPOINT, weights_only=True)
    assert data["format"] == "inpaint-bench" and data["method"] == "lbam"
    assert data["options"] == {"variant": "official", "ablation": "full", "width": 0.0625}
    assert data["train_config"]["objective"] == "lbam_official"
    assert data["train_config"]["deviations"] == [
        "perceptual and style terms off: VGG16 ImageNet weights absent"
    ]
    assert data["vgg"] == "absent" and data["optimizer_d"] is not None


def test_existing_checkpoint_is_not_overwritten_without_resume(tmp_path):
    trainer(tmp_path).run(progress=False)
    with pytest.raises(TrainingError, match="--resume"):
        trainer(tmp_path).run(progress=False)


def test_paper_profile_requires_vgg_weights(tmp_path):
    with pytest.raises(TrainingError, match="vgg16-397923af.pth"):
        Trainer(TrainConfig(profile="paper", out=str(tmp_path / "p"), device="cpu"))


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    run = trainer(tmp_path, steps=6)
    real_terms = losses.generator_terms

    def poisoned(*args, **kwargs):
        terms = real_terms(*args, **kwargs)
        if run.step == 3:  # the fourth step
            terms["hole"] = terms["hole"] * float("nan")
        return terms

    monkeypatch.setattr(losses, "generator_terms", poisoned)
    with pytest.raises(TrainingError, match="non-finite loss at step 4.*last good checkpoint"):
        run.run(progress=False)
    kept = torch.load(tmp_path / "run" / CHECKPOINT, weights_only=True)
    assert kept["step"] == 2
    assert all(torch.isfinite(v).all() for v in kept["generator"].values() if v.is_floating_point())


@pytest.mark.parametrize(
    "options",
    [{"method": "lbam", "ablation": a} for a in ABLATIONS]
    + [
        {"method": "lbam", "variant": "paper"},
        {"method": "lbam", "no_adv": True},
        {"method": "lbam", "d_update": "legacy"},
        {"method": "pconv"},
        {"method": "pconv", "variant": "community"},
    ],
    ids=lambda o: "-".join(str(v) for v in o.values()),
)
def test_a_few_steps_reduce_the_loss_on_a_fixed_batch(tmp_path, options):
    torch.manual_seed(0)
    run = trainer(tmp_path, lr_g=1e-3, **options)
    run.generator.train()
    image, mask = next(iter(run.loader()))

    def reconstruction() -> float:
        with torch.no_grad():
            output = run.generator_output(image, mask)
            terms = losses.generator_terms(
                run.config.objective, image, mask.expand(-1, 3, -1, -1), output, None
            )
        return sum(float(v) for v in terms.values())

    before = reconstruction()
    for _ in range(8):
        run.train_step(image, mask)
        run.step += 1
    assert reconstruction() < before


def test_training_cli_then_benchmark_with_the_checkpoint(tmp_path):
    out = tmp_path / "lbam"
    assert train_main([*TINY_CLI, "--batch-size", "2", "--steps", "2", "--out", str(out)]) == 0
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["step"] == 2
    assert summary["process"] == prepare_process()
    from bench.run import main as run_main

    assert (
        run_main(
            [
                "--methods",
                "lbam,telea",
                "--checkpoint",
                f"lbam={out / CHECKPOINT}",
                "--size",
                "128",
                "--masks-per-bucket",
                "1",
                "--no-progress",
                "--out",
                str(tmp_path / "bench"),
                "--report",
                str(tmp_path / "index.html"),
            ]
        )
        == 0
    )
    provenance = json.loads((tmp_path / "bench" / "run.json").read_text())
    assert provenance["methods"]["lbam"]["options"]["trained"] is True
    assert provenance["methods"]["lbam"]["options"]["width"] == 0.0625


def two_ranks(arguments: list[str], cwd: Path, **environment: str) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node=2 ARGUMENTS`, one thread per rank."""
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *arguments],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "OMP_NUM_THREADS": "1", **environment},
        timeout=300,
    )


def test_two_gloo_ranks_stay_in_sync(tmp_path):
    out = tmp_path / "ddp"
    arguments = ["-m", "bench.train", *TINY_CLI, "--batch-size", "2", "--steps", "3", "--out", str(out)]
    result = two_ranks(arguments, ROOT, TORCH_HOME=str(tmp_path / "torch_home"))
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["world"] == 2 and summary["ranks_in_sync"] is True
    assert len(summary["rank_checksums"]) == 2
    recorded = torch.load(out / CHECKPOINT, weights_only=True)["train_config"]
    assert (recorded["batch_size"], recorded["world_size"], recorded["rank_batch_size"]) == (2, 2, 1)


GLOO_THREADS_AFTER_DESTROY = """
import gc, glob, os, pathlib, torch
from torch import nn
import torch.distributed as dist
from bench.training.distributed import Distributed
Distributed.from_environment("cpu")
model = nn.parallel.DistributedDataParallel(nn.Linear(3, 3))
model(torch.ones(2, 3)).sum().backward()
del model
gc.collect()
dist.destroy_process_group()
names = [open(task).read().strip() for task in glob.glob("/proc/self/task/*/comm")]
left = sum(name.startswith("pt_gloo") for name in names)
pathlib.Path(f"gloo_threads_rank{os.environ['RANK']}.txt").write_text(str(left))
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads thread names from Linux's /proc")
def test_a_ranks_gloo_threads_end_with_its_process_group(tmp_path):
    """A group that outlives destroy_process_group keeps gloo's threads running into interpreter
    exit, where a rank of a finished run aborted now and then (SIGABRT, 'terminate called
    without an active exception')."""
    script = tmp_path / "rank.py"
    script.write_text(GLOO_THREADS_AFTER_DESTROY)
    result = two_ranks([str(script)], tmp_path, PYTHONPATH=str(ROOT))
    assert result.returncode == 0, result.stderr[-3000:]
    assert [(tmp_path / f"gloo_threads_rank{rank}.txt").read_text() for rank in (0, 1)] == ["0", "0"]


def test_training_uses_vgg_terms_when_the_weights_are_in_the_torch_cache(tmp_path, monkeypatch):
    import torchvision

    home = tmp_path / "vgg_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    torch.manual_seed(0)
    target = losses.default_vgg_weights()
    target.parent.mkdir(parents=True)
    torch.save(torchvision.models.vgg16().state_dict(), target)
    run = trainer(tmp_path, steps=1, checkpoint_every=1, objective="lbam_paper", variant="paper")
    summary = run.run(progress=False)
    assert summary["deviations"] == []
    header = (tmp_path / "run" / LOG).read_text().splitlines()[0].split(",")
    assert {"l1", "perceptual", "style", "adversarial", "d_loss"} <= set(header)
    assert torch.load(tmp_path / "run" / CHECKPOINT, weights_only=True)["vgg"] == str(target)


def test_training_stream_is_deterministic_and_mixes_folder_masks(tmp_path):
    import numpy as np
    from PIL import Image

    from bench.datasets.masks import load_mask_folder
    from bench.datasets.training import TrainingStream, training_sources

    hole = np.zeros((128, 128), np.uint8)
    hole[:, :100] = 255  # 78 % hole: outside the test buckets, still a training mask
    Image.fromarray(hole).save(tmp_path / "wide.png")
    folder = load_mask_folder(tmp_path, 128, buckets_only=False)
    _, sources = training_sources("demo")
    stream = TrainingStream(
        sources, 128, 144, seed=3, start=10, length=4, mask_folder=folder, mask_folder_fraction=1.0
    )
    image, mask = stream[0]
    assert image.shape == (3, 128, 128) and 0 <= float(image.min()) and float(image.max()) <= 1
    assert torch.equal(mask[0], torch.from_numpy(folder.masks[0]))
    again = TrainingStream(sources, 128, 144, seed=3, start=0, length=20)
    shifted = TrainingStream(sources, 128, 144, seed=3, start=10, length=4)
    assert torch.equal(again[10][0], shifted[0][0]) and torch.equal(again[10][1], shifted[0][1])
    assert not torch.equal(again[10][0], again[11][0])


# objectives, optimisers and configuration (issue 10, items 2, 4–6) -----------------------------


def test_legacy_adam_first_step_by_hand_and_later_steps_equal_torch_adam():
    from bench.training.legacy_adam import LegacyAdam

    start = torch.tensor([1.0, -2.0, 0.5])
    grads = [torch.tensor([0.3, -0.1, 2.0]), torch.tensor([-0.2, 0.4, 1.0]), torch.tensor([0.1, 0.1, -3.0])]
    legacy, modern = nn.Parameter(start.clone()), nn.Parameter(start.clone())
    optimizers = [
        LegacyAdam([legacy], lr=0.01, betas=(0.5, 0.9)),
        torch.optim.Adam([modern], lr=0.01, betas=(0.5, 0.9)),
    ]
    for step, grad in enumerate(grads):
        legacy.grad, modern.grad = grad.clone(), grad.clone()
        for optimizer in optimizers:
            optimizer.step()
        if step == 0:  # m̂ = g, v̂ = g²: the update is lr·g/(|g| + eps)
            torch.testing.assert_close(legacy.data, start - 0.01 * grad / (grad.abs() + 1e-8))
    torch.testing.assert_close(legacy.data, modern.data)


class SigmoidCritic(nn.Module):
    """D(x) = σ(Σ w·x): its input gradient is σ'(s)·w, with s and w as the forward and backward see them."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.linspace(-1e-4, 1.2e-4, 3 * 128 * 128).view(1, 3, 128, 128))

    def forward(self, images, masks):
        return torch.sigmoid((images * self.weight).flatten(1).sum(1, keepdim=True))


@pytest.mark.parametrize("d_update", ["recompute", "legacy"])
def test_d_update_gradient_of_the_adversarial_term_by_hand(tmp_path, d_update):
    from bench.training.legacy_adam import LegacyAdam

    run = trainer(tmp_path, d_update=d_update)
    run.discriminator = SigmoidCritic()
    run.optimizer_d = (LegacyAdam if d_update == "legacy" else torch.optim.Adam)(
        run.discriminator.parameters(), lr=1e-3, betas=(0.0, 0.9)
    )
    torch.manual_seed(1)
    image, output = torch.rand(2, 3, 128, 128), torch.rand(2, 3, 128, 128).requires_grad_(True)
    old_weight = run.discriminator.weight.detach().clone()
    adversarial = run.discriminator_step(image, torch.ones(2, 3, 128, 128), output, {})
    (grad,) = torch.autograd.grad(adversarial, output)
    # D's first Adam step moves each weight by lr·sign(g) (to within eps)
    new_weight = run.discriminator.weight.detach()
    assert torch.allclose((old_weight - new_weight).abs(), torch.full_like(old_weight, 1e-3), rtol=1e-4)
    score_weight = old_weight if d_update == "legacy" else new_weight  # the value: pre- or post-step D
    score = torch.sigmoid((output.detach() * score_weight).flatten(1).sum(1)).view(2, 1, 1, 1)
    expected = 0.1 / 2 * score * (1 - score) * new_weight  # release sign (+0.1·E[D]), mean over 2
    torch.testing.assert_close(grad, expected.expand_as(grad), rtol=1e-5, atol=1e-12)
    assert float(adversarial.detach()) == pytest.approx(0.1 * float(score.mean()), rel=1e-6)


def test_method_defaults_are_data_and_explicit_values_win():
    lbam = TrainConfig(method="lbam").resolve()
    assert (lbam.variant, lbam.objective, lbam.vgg_input, lbam.d_update) == (
        "official",
        "lbam_official",
        "raw",
        "recompute",
    )
    assert (lbam.lr_g, lbam.betas_g, lbam.lr_d, lbam.betas_d) == (1e-4, (0.5, 0.9), 1e-5, (0.0, 0.9))
    assert TrainConfig(method="lbam", variant="paper").resolve().vgg_input == "imagenet"
    pconv = TrainConfig(method="pconv").resolve()
    assert (pconv.objective, pconv.lr_g, pconv.betas_g, pconv.finetune_lr) == (
        "pconv_paper",
        2e-4,
        (0.9, 0.999),
        5e-5,
    )
    assert TrainConfig(method="pconv", variant="community").resolve().objective == "pconv_community"
    explicit = TrainConfig(method="pconv", lr_g=1e-4, batch_size=6, vgg_input="raw").resolve()
    assert (explicit.lr_g, explicit.batch_size, explicit.vgg_input) == (1e-4, 6, "raw")


def test_paper_profile_pconv_gets_its_second_stage():
    config = TrainConfig(method="pconv", profile="paper").resolve()
    config.resolve_steps(images=100)
    assert config.steps == 1042  # ceil(500 epochs · 100 images / global batch 48)
    assert config.finetune_steps == 521
    mini = TrainConfig(method="pconv").resolve()
    mini.resolve_steps(images=100)
    assert (mini.steps, mini.finetune_steps) == (1500, 375)
    lbam = TrainConfig(method="lbam", profile="paper").resolve()
    lbam.resolve_steps(images=100)
    assert lbam.finetune_steps == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"objective": "lbam_papr"}, "lbam_paper, lbam_official, pconv_paper, pconv_community"),
        ({"objective": "pconv_paper"}, "not an objective of lbam"),
        ({"variant": "offical"}, "official, paper"),
        ({"vgg_input": "bgr"}, "raw, imagenet"),
        ({"d_update": "old"}, "recompute, legacy"),
    ],
)
def test_unknown_training_options_are_refused_with_the_list(options, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(method="lbam", **options).resolve()


def test_cli_refuses_an_unknown_objective(tmp_path, capsys):
    assert train_main([*TINY_CLI, "--objective", "lbam_papr", "--out", str(tmp_path / "x")]) == 2
    assert "lbam_papr" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_global_batch_is_split_across_ranks_and_recorded(tmp_path):
    config = TrainConfig(batch_size=48).resolve()
    assert config.split_batch(4) == 12 and (config.world_size, config.rank_batch_size) == (4, 12)
    with pytest.raises(ValueError, match="--batch-size 6 .* 4 ranks"):
        TrainConfig(batch_size=6).resolve().split_batch(4)
    run = trainer(tmp_path, steps=1, checkpoint_every=1, batch_size=2, d_update="legacy")
    image, _ = next(iter(run.loader()))
    assert image.shape[0] == 2
    run.run(progress=False)
    recorded = torch.load(tmp_path / "run" / CHECKPOINT, weights_only=True)["train_config"]
    assert (recorded["batch_size"], recorded["world_size"], recorded["rank_batch_size"]) == (2, 1, 2)
    assert (recorded["d_update"], recorded["vgg_input"], recorded["objective"]) == (
        "legacy",
        "raw",
        "lbam_official",
    )


def test_a_checkpoint_records_every_training_setting_in_the_methods_provenance(tmp_path):
    run = trainer(tmp_path, steps=1, checkpoint_every=1, d_update="legacy")
    run.run(progress=False)
    method = methods.create("lbam", checkpoint=tmp_path / "run" / CHECKPOINT)
    training = method.describe()["training"]
    assert set(TrainConfig.field_names()) <= set(training)  # no hand-kept list of keys
    assert (training["d_update"], training["vgg_input"], training["step"]) == ("legacy", "raw", 1)
    assert (training["world_size"], training["rank_batch_size"]) == (1, training["batch_size"])


@pytest.mark.parametrize("variant", ["paper", "community"])
def test_subpixel_decoder_is_as_close_to_float64_as_the_modules(variant):
    """--subpixel-decoder computes the decoder's convolutions in another order, so float32 rounding
    differs; measured against the same network in float64, its outputs and every parameter's
    gradient must be as close as the modules' as written, and its sub-pixel layers must run.
    "As close": within 5x of the modules' error plus 1e-6 of the scale (for errors near zero). The
    two forms' rounding errors are like two draws of one distribution: over 12 seeds the sub-pixel
    error reached 1.7x the modules' on one parameter; a wrong form is off by O(1) of the scale."""
    from bench.methods import pconv as pconv_module

    torch.manual_seed(0)
    net = pconv_module.PConvUNet(pconv_module.PConvConfig(variant=variant, width=0.125)).train()
    image = torch.rand(2, 3, 128, 128)
    mask = (torch.rand(2, 1, 16, 16) > 0.3).float().repeat_interleave(8, 2).repeat_interleave(8, 3)
    mask = mask.expand(-1, 3, -1, -1)
    target = torch.rand(2, 3, 128, 128)

    def run(model, subpixel, dtype):
        model.subpixel_decoder = subpixel
        model.zero_grad(set_to_none=True)
        out = model(image.to(dtype), mask.to(dtype))
        (out - target.to(dtype)).abs().mean().backward()
        grads = {n: p.grad.double() for n, p in model.named_parameters() if p.grad is not None}
        return out.detach().double(), grads

    reference = copy.deepcopy(net).double()
    out64, grads64 = run(reference, False, torch.float64)
    calls = []
    original = pconv_module.PCBActiv.forward_subpixel
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pconv_module.PCBActiv, "forward_subpixel", lambda *a: calls.append(1) or original(*a))
        out_sub, grads_sub = run(net, True, torch.float32)
    assert len(calls) == 4  # 16² to 128² outputs; the 2², 4², 8² layers concatenate
    out_plain, grads_plain = run(net, False, torch.float32)

    def close_enough(got, plain, exact):
        scale = float(exact.abs().max())
        return float((got - exact).abs().max()) <= 5 * float((plain - exact).abs().max()) + 1e-6 * scale

    assert close_enough(out_sub, out_plain, out64)
    assert grads_sub.keys() == grads64.keys()
    for name in grads64:
        assert close_enough(grads_sub[name], grads_plain[name], grads64[name]), name


def test_subpixel_decoder_step_computes_the_modules_losses(tmp_path):
    """The trainer switches the generator to the sub-pixel decoder, whose first step sees the
    same losses as the modules' (to float32 rounding, as for channels-last) and which
    the checkpoint records."""
    plain = trainer(tmp_path, "plain", method="pconv")
    subpixel = trainer(tmp_path, "subpixel", method="pconv", subpixel_decoder=True)
    subpixel.generator.load_state_dict(plain.generator.state_dict())
    assert subpixel.generator.subpixel_decoder and not plain.generator.subpixel_decoder
    image, mask = next(iter(plain.loader()))
    expected, got = plain.train_step(image, mask), subpixel.train_step(image, mask)
    assert expected.keys() == got.keys()
    for term in expected:
        assert got[term] == pytest.approx(expected[term], rel=1e-5, abs=1e-7), term
    (tmp_path / "subpixel").mkdir(exist_ok=True)
    subpixel.save()
    stored = torch.load(tmp_path / "subpixel" / CHECKPOINT, weights_only=True)
    assert stored["train_config"]["subpixel_decoder"] is True


def test_subpixel_decoder_is_refused_for_lbam(tmp_path, capsys):
    """LBAM has no upsampling decoder: a one-line error, exit 2, nothing written."""
    out = tmp_path / "run"
    assert train_main([*TINY_CLI, "--subpixel-decoder", "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert "--subpixel-decoder is for pconv" in error and len(error.splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("method", ["lbam", "pconv"])
def test_channels_last_step_computes_the_plain_layouts_losses(tmp_path, method):
    """--channels-last changes the memory layout only: the network's first step sees the same
    losses as in planes, to float32 rounding of convolutions summed in another order (the loss is
    a mean of O(1) terms: 1e-5 relative is ~100 roundings), and the network is in that layout."""
    plain = trainer(tmp_path, "plain", method=method, no_adv=True)
    last = trainer(tmp_path, "last", method=method, no_adv=True, channels_last=True)
    last.generator.load_state_dict(plain.generator.state_dict())
    image, mask = next(iter(plain.loader()))
    convolutions = [m.weight for m in last.generator.modules() if isinstance(m, nn.Conv2d)]
    assert convolutions and all(w.is_contiguous(memory_format=torch.channels_last) for w in convolutions)
    expected, got = plain.train_step(image, mask), last.train_step(image, mask)
    assert expected.keys() == got.keys()
    for term in expected:
        assert got[term] == pytest.approx(expected[term], rel=1e-5, abs=1e-7), term


@pytest.mark.parametrize(("method", "d_update"), [("lbam", "recompute"), ("lbam", "legacy"), ("pconv", None)])
def test_fused_adam_takes_the_default_adams_steps(tmp_path, method, d_update):
    """--fused-adam computes Adam's update in one vectorised kernel: after a training step and two
    more updates from the same small gradients (where ε and the betas matter), every parameter of G
    (and of D, whose legacy update keeps torch 1.4's Adam) equals the default optimiser's to float32
    rounding: 2 ulps of the parameter and of the update (≤ lr) per step. The checkpoint records it."""
    options = {"method": method, **({"d_update": d_update} if d_update else {})}
    plain = trainer(tmp_path, "plain", **options)
    fused = trainer(tmp_path, "fused", **options, fused_adam=True)
    pairs = [(plain.generator, fused.generator, plain.optimizer_g, fused.optimizer_g, plain.config.lr_g)]
    if plain.discriminator is not None:
        pairs.append(
            (
                plain.discriminator,
                fused.discriminator,
                plain.optimizer_d,
                fused.optimizer_d,
                plain.config.lr_d,
            )
        )
    for default_net, fused_net, *_ in pairs:
        fused_net.load_state_dict(default_net.state_dict())
    assert fused.optimizer_g.defaults["fused"] and not plain.optimizer_g.defaults["fused"]
    if d_update is not None:
        assert isinstance(fused.optimizer_d, LegacyAdam) == (d_update == "legacy")
    image, mask = next(iter(plain.loader()))
    assert plain.train_step(image, mask) == fused.train_step(image, mask)  # same forward and gradients
    generator = torch.Generator().manual_seed(0)
    for _ in range(2):
        for default_net, fused_net, default_adam, fused_adam, _rate in pairs:
            for expected, got in zip(default_net.parameters(), fused_net.parameters(), strict=True):
                expected.grad = torch.randn(expected.shape, generator=generator) * 1e-3
                got.grad = expected.grad.clone()
            default_adam.step()
            fused_adam.step()
    eps = torch.finfo(torch.float32).eps
    for default_net, fused_net, *_, rate in pairs:
        for (name, expected), got in zip(default_net.named_parameters(), fused_net.parameters(), strict=True):
            torch.testing.assert_close(got, expected, rtol=6 * eps, atol=6 * eps * rate, msg=name)
    (tmp_path / "fused").mkdir(exist_ok=True)
    fused.save()
    stored = torch.load(tmp_path / "fused" / CHECKPOINT, weights_only=True)
    assert stored["train_config"]["fused_adam"] is True
