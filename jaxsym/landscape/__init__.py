"""The landscape: what is being minimised, and nothing else.

The closed-form ReLU population loss with its gradient, Hessian and Hessian-vector product (:mod:`.model`), other
activations and correlated inputs as population losses (:mod:`.activations`), input laws for sampled objectives
(:mod:`.distributions`), layered networks with their rescaling symmetry (:mod:`.networks`), and the student seam of
sampled sweeps (:mod:`.students`) with its flax instance, a user's ``flax.nnx`` module whose symmetry is read from
it (:mod:`.flax_students`). Single-example functions of one weight matrix or parameter pytree; batch them with
``jax.vmap``.

May import: nothing of jaxsym outside this package.
"""
