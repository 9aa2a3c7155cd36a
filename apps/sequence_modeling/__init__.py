"""Sequence modeling with SimpleRNN, GRU or LSTM: classification, a character language model,
forecasting (app.py), their recurrent stack (model.py) and data (data.py)."""
