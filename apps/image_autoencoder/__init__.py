"""An image autoencoder (app.py), its keys in config.py: the second, unsupervised, worked
example of docs/adding_a_task.md."""
