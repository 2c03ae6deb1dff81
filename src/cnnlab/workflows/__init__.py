"""Workflows (train, finetune, predict, ...): one function each, called by the CLI and usable from Python."""
