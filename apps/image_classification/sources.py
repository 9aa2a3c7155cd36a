"""Which source a config names: a multi-label manifest (manifest.py), class folders
(folders.py), else IDX files or TFDS (data.py)."""

from apps.image_classification.data import ImageSource, is_folder_of_classes
from apps.image_classification.folders import FolderImages
from apps.image_classification.manifest import ManifestImages
from training.errors import ConfigError


def image_source(data):
    """The source `data` (an ImageDataConfig) names: a manifest, class folders, else IDX files
    or TFDS."""
    if data.labels == "multi":
        source = ManifestImages(data.manifest, data.label_separator, data.image_size,
                                data.channels, data.validation_split, data.test_split, data.limit,
                                data.background, data.max_image_pixels)
        data.image_size, data.channels = list(source.size), source.channels
        return source
    folder = data.format == "folder" or (data.format == "auto" and is_folder_of_classes(data))
    if not folder:
        return ImageSource(data.name, data.dir, data.validation_split, data.limit, data.download)
    if not data.dir:
        raise ConfigError("data.format=folder needs data.dir=PATH: a folder of class folders of images")
    folder = FolderImages(data.dir, data.image_size, data.channels, data.validation_split,
                          data.test_split, data.limit, data.classes, data.background,
                          data.max_image_pixels)
    # What was resolved goes into config.yaml: a folder run said name fashion_mnist, channels null.
    data.format, data.name = "folder", ""
    data.image_size, data.channels = list(folder.size), folder.channels
    data.classes = list(folder.class_names)
    return folder
