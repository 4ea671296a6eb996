"""CA: Generative Image Inpainting with Contextual Attention (Yu et al., CVPR 2018; DeepFill v1).

Runs the authors' released TensorFlow checkpoints (generative_inpainting v1.0.0: places2, celeba,
celeba_hq, imagenet; CC BY-NC 4.0) without TensorFlow: `methods.tf_bundle` reads the bundle, the
kernels [kh, kw, in, out] become O×I×kh×kw (transpose(3, 2, 0, 1)) and every generator variable
must be present and of the right shape. The release's `test.py` reads images with cv2.imread, so
the released network takes and returns BGR: RGB images are flipped going in and coming out.
Input (v1.0.0 `build_server_graph`): x = image/127.5 − 1 on [0, 255] (here 2·image − 1), holes
zeroed; output (x2 + 1)/2 (the release then rounds to 8 bit; here floats unless the harness
quantises). DeepFill v1 was trained on rectangular holes (≤ 128×128 at 256²); its paper
evaluates a centred H/2 × W/2 hole.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from bench.core.errors import MethodError
from bench.methods.ca.network import CHANNELS, DeepFillV1, tf_names
from bench.methods.checkpoints import CheckpointError, strict_load
from bench.methods.learned import LearnedMethod
from bench.methods.registry import register
from bench.methods.tf_bundle import Bundle, BundleError, loaded_sha256

SIZE_MULTIPLE = 8  # three stride-2 levels: two convolutions and the attention's rate 2
GENERATOR_SCOPE = "inpaint_net/"
TRAINING_HOLES = (
    "rectangular holes of 96-128 px at 256x256 (v1.0.0 inpaint.yml: HEIGHT/WIDTH 128, MAX_DELTA 32); "
    "the CA paper evaluates a centred H/2 x W/2 hole, not irregular masks"
)
OPTIMIZER_SLOTS = ("Adam", "Adam_1", "Momentum", "RMSProp", "RMSProp_1", "ExponentialMovingAverage")


READINGS = ("release", "paper")


@dataclass(frozen=True)
class CAConfig:
    width: float = 1.0  # cnum = round(32·width); the released weights need 1.0
    attention: str = "release"  # or "paper": Eqs. 1–2 as printed (see methods.ca.ops)

    def __post_init__(self) -> None:
        if self.attention not in READINGS:
            raise MethodError(f"ca: attention must be one of {READINGS}, got {self.attention!r}")
        if not 2 <= round(CHANNELS * self.width) <= 4 * CHANNELS:
            raise MethodError(f"ca: width must give 2 to 128 channels (32·width), got {self.width}")


def generator_state(bundle: Bundle, net: DeepFillV1) -> tuple[dict[str, Tensor], list[str]]:
    """The network's state dict from a bundle's `inpaint_net/` variables, and the names left aside
    (other scopes such as the discriminator, and optimizer slots). Missing or misshaped variables,
    and unknown generator variables, are refused with their names."""
    wanted = {}
    for key, module in net.layers.items():
        kernel, bias = tf_names(module.layer)
        wanted[kernel], wanted[bias] = (f"layers.{key}.weight", True), (f"layers.{key}.bias", False)
    ignored = [
        n for n in bundle.entries if not n.startswith(GENERATOR_SCOPE) or n.split("/")[-1] in OPTIMIZER_SLOTS
    ]
    unexpected = [n for n in bundle.entries if n not in wanted and n not in ignored]
    missing = [n for n in wanted if n not in bundle.entries]
    expected_shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    state, misshaped = {}, []
    for name, (key, is_kernel) in wanted.items():
        if name in missing:
            continue
        shape = bundle.entries[name].shape
        converted = (shape[3], shape[2], shape[0], shape[1]) if is_kernel and len(shape) == 4 else shape
        if converted != expected_shapes[key]:
            misshaped.append(f"{name} (checkpoint {shape}, model needs {expected_shapes[key]} as O×I×kh×kw)")
            continue
        array = bundle.tensor(name).astype(np.float32)
        state[key] = torch.from_numpy(array.transpose(3, 2, 0, 1).copy() if is_kernel else array)
    problems = [
        f"{len(names)} {label} variable(s): " + ", ".join(names[:5]) + (" …" if len(names) > 5 else "")
        for label, names in (("missing", missing), ("unexpected", unexpected), ("misshaped", misshaped))
        if names
    ]
    if problems:
        raise CheckpointError(f"{bundle.index.name} does not fit DeepFill v1: " + "; ".join(problems))
    return state, ignored


class CA(LearnedMethod):
    name = "ca"
    size_multiple = SIZE_MULTIPLE

    def __init__(self, config: CAConfig, device: str = "cpu") -> None:
        super().__init__(config, DeepFillV1(round(CHANNELS * config.width), config.attention), device)
        self.ignored_variables = 0

    def network_inputs(self, image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        self.check_size(image)
        hole = 1 - mask
        bgr = image.flip(1) * 2 - 1
        return bgr * mask, hole

    def to_image_space(self, output: Tensor) -> Tensor:
        return (output.flip(1) + 1) / 2

    def load_bundle(self, checkpoint: str | Path) -> None:
        bundle = Bundle(checkpoint)
        state, ignored = generator_state(bundle, self.net)
        strict_load(self.net, state, bundle.index.name)
        self.trained, self.checkpoint_kind = True, "deepfill-v1-tf"
        self.ignored_variables = len(ignored)
        self.training = {  # what was loaded; nothing here claims it is the authors' file
            "layout": "generative_inpainting v1.0.0 (TensorFlow V2 checkpoint, 84 inpaint_net variables)",
            "checkpoint": bundle.index.parent.name + "/" + bundle.index.name,
            "sha256": loaded_sha256(bundle.index),
            "holes": TRAINING_HOLES,
        }
        self.net.to(self.device)


@register("ca")
def create_ca(
    device: str = "cpu", checkpoint: str | Path | None = None, width: float = 1.0, attention: str = "release"
) -> CA:
    method = CA(CAConfig(width=width, attention=attention), device)
    if checkpoint is not None:
        try:
            method.load_bundle(checkpoint)
        except BundleError as error:
            hint = "a TensorFlow V2 checkpoint: its folder, PREFIX or PREFIX.index"
            raise CheckpointError(f"ca: {error} ({hint})") from None
    return method
