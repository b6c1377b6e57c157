"""Worked examples a config can name (``"jaxsym.examples.networks:two_layer_relu"``)."""
