"""COVID-19 outcome risk from admission labs (Tongji cohort, Yan et al. 2020).

``features`` (admission window, value checks), ``yan`` (the published baseline rule),
``runtime`` (numpy scoring of the shipped JSON model) and the CLI need only numpy.
Training (``train``) needs scikit-learn and evaluation plots (``evaluate``) matplotlib,
both in the ``train`` extra.
"""
