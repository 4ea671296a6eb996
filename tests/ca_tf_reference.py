"""DeepFill v1's generator built from TensorFlow ops (tests only; needs the optional `[tf]` extra).

Follows generative_inpainting v1.0.0 `inpaint_model.build_inpaint_net` and
`inpaint_ops.contextual_attention` with TF's own operations (tf.nn.convolution "SAME",
resize_nearest_neighbor(align_corners=True), tf.image.extract_patches, conv2d_transpose), NHWC,
one shared mask [1, H, W, 1] (1 = hole) for the batch, variables looked up by checkpoint name.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from bench.methods.ca.network import (
    ATTENTION_IN,
    ATTENTION_OUT,
    COARSE,
    HALLUCINATION,
    REFINE,
    Layer,
    tf_names,
)


def resize(x: tf.Tensor, height: int, width: int) -> tf.Tensor:
    return tf.compat.v1.image.resize_nearest_neighbor(x, [height, width], align_corners=True)


def gen_conv(x: tf.Tensor, layer: Layer, weights: dict[str, np.ndarray]) -> tf.Tensor:
    if layer.upsample:
        x = resize(x, 2 * x.shape[1], 2 * x.shape[2])
    kernel, bias = tf_names(layer)
    x = (
        tf.nn.convolution(x, weights[kernel], strides=layer.stride, padding="SAME", dilations=layer.rate)
        + weights[bias]
    )
    if layer.activation == "elu":
        return tf.nn.elu(x)
    return tf.nn.relu(x) if layer.activation == "relu" else x


def run(x: tf.Tensor, layers: tuple[Layer, ...], weights: dict[str, np.ndarray]) -> tf.Tensor:
    for layer in layers:
        x = gen_conv(x, layer, weights)
    return x


def patches(x: tf.Tensor, size: int, stride: int) -> tf.Tensor:
    """[1, H, W, C] → [k, k, C, L] (the release's extract_image_patches + reshape + transpose)."""
    found = tf.image.extract_patches(x, [1, size, size, 1], [1, stride, stride, 1], [1, 1, 1, 1], "SAME")
    found = tf.reshape(found, [1, -1, size, size, x.shape[3]])
    return tf.transpose(found, [0, 2, 3, 4, 1])[0]


def contextual_attention(f: tf.Tensor, b: tf.Tensor, mask: tf.Tensor, rate: int = 2) -> tf.Tensor:
    ksize, fuse_k, scale = 3, 3, 10.0
    height, width = f.shape[1], f.shape[2]
    f_small = resize(f, int(height / rate), int(width / rate))
    b_small = resize(b, int(b.shape[1] / rate), int(b.shape[2] / rate))
    mask = resize(mask, int(mask.shape[1] / rate), int(mask.shape[2] / rate))
    fh, fw, bh, bw = f_small.shape[1], f_small.shape[2], b_small.shape[1], b_small.shape[2]
    m = patches(mask, ksize, 1)
    mm = tf.cast(tf.equal(tf.reduce_mean(m, axis=[0, 1, 2], keepdims=True), 0.0), tf.float32)
    fuse_weight = tf.reshape(tf.eye(fuse_k), [fuse_k, fuse_k, 1, 1])
    outputs = []
    for i in range(f.shape[0]):
        raw_w = patches(b[i : i + 1], 2 * rate, rate)
        w = patches(b_small[i : i + 1], ksize, 1)
        w_normed = w / tf.maximum(tf.sqrt(tf.reduce_sum(tf.square(w), axis=[0, 1, 2])), 1e-4)
        y = tf.nn.conv2d(f_small[i : i + 1], w_normed, strides=1, padding="SAME")
        y = tf.reshape(y, [1, fh * fw, bh * bw, 1])
        y = tf.nn.conv2d(y, fuse_weight, strides=1, padding="SAME")
        y = tf.transpose(tf.reshape(y, [1, fh, fw, bh, bw]), [0, 2, 1, 4, 3])
        y = tf.reshape(y, [1, fh * fw, bh * bw, 1])
        y = tf.nn.conv2d(y, fuse_weight, strides=1, padding="SAME")
        y = tf.transpose(tf.reshape(y, [1, fw, fh, bw, bh]), [0, 2, 1, 4, 3])
        y = tf.reshape(y, [1, fh, fw, bh * bw]) * mm
        y = tf.nn.softmax(y * scale, 3) * mm
        shape = [1, height, width, f.shape[3]]
        outputs.append(tf.nn.conv2d_transpose(y, raw_w, shape, strides=[1, rate, rate, 1]) / 4.0)
    return tf.concat(outputs, 0)


def inpaint_net(x: np.ndarray, mask: np.ndarray, weights: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """x: N×H×W×3 in [−1, 1], holes zeroed; mask: 1×H×W×1, 1 = hole. Returns (x1, x2) NHWC."""
    x, mask = tf.constant(x), tf.constant(mask)
    ones = tf.ones_like(x)[:, :, :, 0:1]
    coarse = tf.clip_by_value(run(tf.concat([x, ones, ones * mask], 3), COARSE, weights), -1.0, 1.0)
    x_now = tf.concat([coarse * mask + x * (1.0 - mask), ones, ones * mask], 3)
    hallucinated = run(x_now, HALLUCINATION, weights)
    features = run(x_now, ATTENTION_IN, weights)
    mask_small = resize(mask, features.shape[1], features.shape[2])
    attended = run(contextual_attention(features, features, mask_small), ATTENTION_OUT, weights)
    refined = tf.clip_by_value(run(tf.concat([hallucinated, attended], 3), REFINE, weights), -1.0, 1.0)
    return coarse.numpy(), refined.numpy()
