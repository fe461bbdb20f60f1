"""One parser per module; each registered in the ``pukara.parsers`` entry-point group."""
