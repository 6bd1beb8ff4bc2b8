"""Clinician's diagnostic assistant from symptoms (issue 8): benchmarks, models, free text,
interactive questioning. Research use only: not a medical device."""
