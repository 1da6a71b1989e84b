"""Active STUN/TURN probes: message codec (``stun``), network client (``client``), the
periodic job (``scheduler``), settings and the ``icewatch probe`` command."""
