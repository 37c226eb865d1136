"""fastrnn: recurrent networks (RNN, LSTM, GRU) trained on the CPU with Numba kernels."""

__version__ = "0.1.0"
