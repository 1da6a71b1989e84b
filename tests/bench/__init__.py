"""The benchmark suite (`make bench`). Not run by pytest; each module prints its measurements."""
