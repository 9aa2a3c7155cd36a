"""Keras' own backbones (`model.arch=keras_applications/<Name>`) with this project's head.

The backbone is `keras.applications.<Name>(include_top=False)`, with ImageNet weights, none,
or a weights file; its input goes through that application's own `preprocess_input`
inside the model (ApplicationPreprocessing), so the export still takes raw uint8 pixels.
"""

import re
import sys
from pathlib import Path

import keras
from keras.src.backend.config import keras_home

from training.errors import ConfigError, DataNotFoundError

PREFIX = "keras_applications/"


def application_names():
    return sorted(n for n in dir(keras.applications) if n[:1].isupper() and callable(
        getattr(keras.applications, n)))


def _constructor(name):
    constructor = getattr(keras.applications, name, None) if name[:1].isupper() else None
    if not callable(constructor):
        raise ConfigError(f"model.arch={PREFIX}{name}: keras.applications has no {name!r}; choose "
                          f"one of: {', '.join(application_names())}")
    return constructor


@keras.saving.register_keras_serializable(package="keras_app_templates")
class ApplicationPreprocessing(keras.layers.Layer):
    """The `preprocess_input` of keras.applications model `application` (scaling, channel
    order, mean and std as it was trained with), as a layer so it is saved in the model."""

    def __init__(self, application, **kwargs):
        super().__init__(**kwargs)
        self.application = application
        self._preprocess = sys.modules[_constructor(application).__module__].preprocess_input

    def call(self, inputs):
        return self._preprocess(inputs)

    def get_config(self):
        return {**super().get_config(), "application": self.application}


def _weights_file_hint(error):
    """Where Keras wanted to download ImageNet weights from, and where it looks for them first."""
    url = re.search(r"https?://[^\s:]+(?::\d+)?[^\s:]*", str(error))
    if not url:
        return ""
    name = url.group(0).rstrip("/").rsplit("/", 1)[-1]
    # keras.utils.get_file's cache; Keras exports no public accessor of its home ($KERAS_HOME).
    cache = Path(keras_home()) / "models"
    return (f" Keras wants {name} from {url.group(0)}: download it where there is internet and copy "
            f"it to {cache / name} (Keras looks there first),")


def backbone(arch, x, weights):
    """The keras.applications model `arch` (keras_applications/<Name>) applied to float
    RGB images `x` (0-255): its preprocessing, then its convolutional base."""
    name = arch[len(PREFIX):]
    constructor = _constructor(name)
    weights = None if weights == "none" else weights
    if weights not in (None, "imagenet") and not Path(weights).is_file():
        raise DataNotFoundError(f"model.weights={weights} is not a file; give imagenet, none or the "
                                f"path of a weights file for {name}")
    try:
        base = constructor(include_top=False, weights=weights, input_shape=tuple(x.shape[1:]))
    except ValueError as e:  # input too small, wrong channel count, weights of another model
        raise ConfigError(f"keras.applications.{name}: {str(e).splitlines()[0]} (image folders: "
                          "set data.image_size=HEIGHT,WIDTH)") from None
    except Exception as e:  # the download: Keras raises a bare Exception offline
        if weights != "imagenet":
            raise
        raise DataNotFoundError(
            f"model.weights=imagenet: Keras could not download {name}'s ImageNet weights "
            f"({str(e).splitlines()[0][:200]}).{_weights_file_hint(e)} or pass "
            "--set model.weights=PATH (a weights file) or --set model.weights=none") from None
    x = ApplicationPreprocessing(name, name="preprocess")(x)
    return base(x)
