"""ONNX export of model folders and ONNX Runtime inference."""
