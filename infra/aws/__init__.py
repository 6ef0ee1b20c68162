"""The AWS rendering of the architecture: one module per layer, composed by `program.build`."""
