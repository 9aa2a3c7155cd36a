"""Unsupervised pretraining: a Deep Belief Network of RBMs, then fine-tuning (app.py); one RBM
trained under model.fit (rbm_training.py: fit_rbm); pretraining figures (plots.py)."""
