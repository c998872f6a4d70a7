"""Shipping a chosen model: the model folder, streaming predict and the optional ONNX export."""
