"""Grad-CAM (Selvaraju et al., 2017): which pixels a class's score rests on, from the gradient
of that score with respect to the model's last convolutional feature map.

The model is cut at that map into a body (image -> map) and a head (map -> probabilities), both
Keras models over the same layers, so the map and the maps' weights are Keras ops on any
backend. Only the gradient is not: Keras 3 has no backend-neutral gradient op, so `_gradient`
asks the backend in use (tf.GradientTape, jax.grad, torch autograd).
"""

import sys

import keras
import numpy as np

from training.errors import ConfigError


def _convolves(layer):
    """Does `layer` hold a convolution kernel (a weight of rank 3 or more: Conv2D's, a
    depthwise one, or those of a block or nested model of them)? Dense kernels have rank 2."""
    return any(len(w.shape) >= 3 for w in layer.weights)


def feature_map_layer(model):
    """The last layer at or after the first convolution whose output is a spatial feature map
    (batch, height, width, channels) with more than one position: the last convolutional
    block's output, or a nested backbone model's (keras_applications/*). ConfigError if the
    model takes no images or has no such map."""
    inputs = model.inputs
    if len(inputs) != 1 or len(inputs[0].shape) != 4:
        taken = ", ".join(f"{i.dtype} {tuple(i.shape)[1:]}" for i in inputs)
        raise ConfigError(f"Grad-CAM explains image models; {model.name} takes {taken}, not images "
                          "(height, width, channels)")
    layers = model.layers
    first = next((i for i, layer in enumerate(layers) if _convolves(layer)), len(layers))
    maps = [layer for layer in layers[first:] if len(layer.output.shape) == 4]
    for layer in reversed(maps):
        shape = layer.output.shape
        if (shape[1] or 0) * (shape[2] or 0) > 1:
            return layer
    if maps:
        raise ConfigError(f"{model.name}'s last feature map is {maps[-1].output.shape[1]}x"
                          f"{maps[-1].output.shape[2]} at this image size: nothing for Grad-CAM to "
                          "place; larger images (data.image_size) give it more positions")
    raise ConfigError(f"{model.name} has no convolutional feature map (no convolution whose output "
                      "is height x width x channels) for Grad-CAM to weigh")


def split(model):
    """(body, head): image -> last feature map, feature map -> the model's output."""
    layer = feature_map_layer(model)
    body = keras.Model(model.inputs, layer.output)
    head = keras.Model(layer.output, model.outputs[0])
    return body, head


def _gradient(head, feature_map, classes):
    """d(sum over the batch of head(feature_map)[i, classes[i]]) / d(feature_map)."""
    backend = keras.backend.backend()
    pick = keras.ops.one_hot(keras.ops.convert_to_tensor(classes), head.outputs[0].shape[-1])
    if backend == "tensorflow":
        tf = sys.modules["tensorflow"]
        with tf.GradientTape() as tape:
            tape.watch(feature_map)
            score = tf.reduce_sum(head(feature_map, training=False) * pick)
        return tape.gradient(score, feature_map)
    if backend == "jax":  # loaded by Keras already; not a dependency of this project
        jax = sys.modules["jax"]
        return jax.grad(lambda f: (head(f, training=False) * pick).sum())(feature_map)
    if backend == "torch":
        feature_map = feature_map.detach().requires_grad_(True)
        (head(feature_map, training=False) * pick).sum().backward()
        return feature_map.grad
    raise ConfigError(f"Grad-CAM has no gradient for the {backend} backend")


def heatmaps(model, images, classes=None, parts=None):
    """Grad-CAM maps in [0, 1], one per image at the images' height and width, for `classes`
    (default: each image's predicted class); and the probabilities. `parts`: split(model),
    when already made."""
    body, head = parts or split(model)
    feature_map = body(keras.ops.convert_to_tensor(images), training=False)
    probabilities = keras.ops.convert_to_numpy(head(feature_map, training=False))
    if classes is None:
        classes = np.argmax(probabilities, axis=-1)
    grads = _gradient(head, feature_map, np.asarray(classes, np.int64))
    weights = keras.ops.mean(grads, axis=(1, 2), keepdims=True)  # one per channel
    cam = keras.ops.relu(keras.ops.sum(weights * feature_map, axis=-1, keepdims=True))
    cam = keras.ops.image.resize(cam, tuple(np.shape(images)[1:3]), interpolation="bilinear")
    cam = keras.ops.convert_to_numpy(cam)[..., 0].astype(np.float32)
    peak = cam.reshape(len(cam), -1).max(axis=1).reshape(-1, 1, 1)
    return np.divide(cam, peak, out=np.zeros_like(cam), where=peak > 0), probabilities
