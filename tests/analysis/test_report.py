"""The info/compare workflows count GoogLeNet's training-only auxiliary heads apart."""

from cnnlab.workflows.analyze import compare_rows, model_info


def test_googlenet_inference_params_exclude_aux_heads():
    info = model_info("googlenet", depth=0)
    assert info["inference_params"] == 6_624_904  # torchvision's published figure
    assert info["params"] > info["inference_params"]  # aux heads exist (training only)
    assert compare_rows(["googlenet"])[0]["params"] == 6_624_904


def test_models_without_training_heads_report_one_count():
    info = model_info("resnet18", depth=0)
    assert info["inference_params"] == info["params"] == 11_689_512
