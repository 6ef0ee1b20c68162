"""The Pulumi program: one module per layer of the architecture, composed by __main__.py."""
