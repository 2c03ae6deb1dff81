"""Every model family, one file each. Importing this package registers all of them."""

from . import (
    alexnet,
    densenet,
    efficientnet,
    googlenet,
    lenet,
    mobilenet,
    nin,
    preact_resnet,
    resnet,
    resnet_cifar,
    swin,
    vgg,
    vit,
    xception,
    zfnet,
)

__all__ = [
    "lenet",
    "alexnet",
    "zfnet",
    "vgg",
    "nin",
    "googlenet",
    "resnet",
    "resnet_cifar",
    "preact_resnet",
    "densenet",
    "xception",
    "mobilenet",
    "efficientnet",
    "vit",
    "swin",
]
