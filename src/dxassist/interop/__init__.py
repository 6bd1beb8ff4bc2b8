"""DICOM result objects: the Structured Report and heatmap Secondary Capture that dxassist
sends back to the PACS, and a validator wrapper (dciodvfy)."""
