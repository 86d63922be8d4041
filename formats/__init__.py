"""Bitstreams and containers: the baseline JFIF writer, the JPEG reader and the
learned-codec container (installed as ``jpegtorch.formats``)."""
