"""dxassist: AI second opinions for hospitals."""

__version__ = "0.1.0"
