"""Image classification: MobileNet or ResNet backbones (app.py, model.py, backbones.py) on
Fashion-MNIST's IDX files or any TFDS image set (data.py)."""
