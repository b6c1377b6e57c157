"""``python -m jaxsym …``: the command line (:mod:`jaxsym.cli`)."""

from jaxsym.cli import app

app(prog_name="jaxsym")
