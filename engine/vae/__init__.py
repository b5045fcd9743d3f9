"""Scores for latent variables (SEEDS.md §6): a VAE whose implicit encoder's entropy gradient comes
from a learned score s_ψ(z, x) ≈ ∇_z log q(z|x). `models` the networks, `objective` the ELBO terms
and the entropy surrogate, `training` the Task on the one loop, `evaluate` the importance-sampled
bound and the arrays the page shows, `check` the score-based vs analytic entropy-gradient check."""
