"""Tests of shipping a chosen model: the model folder, predict and the ONNX export."""
