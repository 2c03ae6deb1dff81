"""The from-scratch engine: convolutional networks in NumPy alone (never torch).

im2col + GEMM convolution, pooling with switches, fully connected layers, activations, batch norm,
dropout, softmax cross-entropy, L1/L2 penalties, the classic optimizers, a Sequential container, a
training loop and LeNet-5. Every layer is checked against PyTorch and against finite differences
(see ``tests/scratch``).
"""

from .activations import Dropout, LeakyReLU, ReLU, Sigmoid, Tanh
from .base import Layer, Param
from .im2col import col2im, conv_output_size, im2col
from .layers import AvgPool2d, Conv2d, Flatten, Linear, MaxPool2d
from .losses import L1Penalty, L2Penalty, SoftmaxCrossEntropy
from .model import Sequential, lenet5
from .norm import BatchNorm1d, BatchNorm2d
from .optim import GD, OPTIMIZERS, SGD, AdaGrad, Adam, AdamW, Momentum, Nesterov, Optimizer, RMSprop
from .train import Arrays, EpochStats, evaluate, fit, train_one_epoch

__all__ = [
    "GD", "OPTIMIZERS", "SGD", "AdaGrad", "Adam", "AdamW", "Arrays", "AvgPool2d", "BatchNorm1d",
    "BatchNorm2d", "Conv2d", "Dropout", "EpochStats", "Flatten", "L1Penalty", "L2Penalty", "Layer",
    "LeakyReLU", "Linear", "MaxPool2d", "Momentum", "Nesterov", "Optimizer", "Param", "RMSprop", "ReLU",
    "Sequential", "Sigmoid", "SoftmaxCrossEntropy", "Tanh", "col2im", "conv_output_size", "evaluate",
    "fit", "im2col", "lenet5", "train_one_epoch",
]
