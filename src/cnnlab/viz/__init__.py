"""Pictures of networks and training.

* :mod:`~cnnlab.viz.plots` - training curves and confusion matrices;
* :mod:`~cnnlab.viz.filters` - the first conv layer's kernels as a tile grid;
* :mod:`~cnnlab.viz.features` - the strongest feature maps of a stage for one image (forward hooks);
* :mod:`~cnnlab.viz.cam` - CAM (Zhou et al. 2016) and Grad-CAM (Selvaraju et al. 2017, arXiv:1610.02391);
* :mod:`~cnnlab.viz.deconvnet` - ZFNet's deconvnet (Zeiler & Fergus 2013, arXiv:1311.2901).

Every function takes a model that follows the cnnlab contract (stages, ``forward_features``,
``forward_head``) and writes its PNG atomically with matplotlib's Agg backend. The workflow
functions that load a model and an image by name are in :mod:`cnnlab.workflows.visualize`.
"""

from .cam import class_activation_map, grad_cam, plot_cam
from .deconvnet import deconv_projection, plot_projection, unpool
from .features import feature_maps, plot_feature_maps
from .filters import first_conv, plot_filters

__all__ = ["class_activation_map", "deconv_projection", "feature_maps", "first_conv", "grad_cam", "plot_cam",
           "plot_feature_maps", "plot_filters", "plot_projection", "unpool"]
