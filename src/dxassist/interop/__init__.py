"""Hospital integration: the DICOM network (receive by C-STORE, send results back by
C-STORE or STOW-RS), the result objects (DICOM SR, heatmap Secondary Capture) and FHIR."""
