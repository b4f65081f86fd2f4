"""PyTorch reproductions of the paper's experiments, built on (and tested against) the NumPy core.

Modules: ``relaxed`` (torch ExpConcrete / logit-space Binary Concrete), ``notation`` (the paper's model
notation), ``models`` (discrete-latent models), ``objectives`` (Concrete, VIMCO, NVIL, evaluation bound).
"""
