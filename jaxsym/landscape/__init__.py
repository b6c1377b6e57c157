"""The landscape: what is being minimised, and nothing else.

The closed-form ReLU population loss with its gradient, Hessian and Hessian-vector product (:mod:`.model`), other
activations and correlated inputs as population losses (:mod:`.activations`), input laws for sampled objectives
(:mod:`.distributions`) and layered networks with their rescaling symmetry (:mod:`.networks`). Single-example
functions of one weight matrix; batch them with ``jax.vmap``.

May import: nothing of jaxsym outside this package.
"""
