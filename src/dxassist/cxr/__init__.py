"""The chest X-ray model: taxonomy, preprocessing, runtime, heatmaps, triage.

Training (``dxassist.cxr.train``) needs PyTorch (the ``train`` extra); everything else
here runs on numpy, Pillow and ONNX Runtime.
"""
