"""DVC stages: one module each, a thin ``main()`` that parses arguments and params and calls ``tlstudy``."""
