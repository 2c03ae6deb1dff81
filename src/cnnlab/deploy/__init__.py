"""Taking a trained model out of cnnlab: exported files, their metadata, and proof they agree.

============  ======================================================================================
metadata      what every exported file says about itself (model, classes, preprocessing, source
              weights and their SHA-256, cnnlab version), and reading it back
folding       BatchNorm folded into the convolution before it (``torch.fx``), where the graph allows
formats       the writers and loaders of ONNX (``torch.onnx`` dynamo exporter), TorchScript (trace +
              freeze) and ``torch.export`` programs
quantize      onnxruntime's static int8 quantisation, calibrated on the user's images
parity        the exported model against the PyTorch one on the same inputs: max |logit difference|,
              top-1 agreement, one-line failure beyond the tolerance
runtime       an ONNX file as a classifier (onnxruntime, its embedded preprocessing and class names),
              for ``cnnlab predict model.onnx``
============  ======================================================================================

The workflow that ties them together is :func:`cnnlab.workflows.export.export`.
"""
