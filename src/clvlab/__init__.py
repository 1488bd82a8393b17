"""clvlab: Bayesian customer-lifetime-value research workbench.

Layers (data flows one way): ``data`` -> ``features`` -> ``models`` -> ``clv`` /
``evaluate`` -> ``plots`` -> ``report`` / ``runs`` -> ``cli``.
"""

__version__ = "0.1.0"
