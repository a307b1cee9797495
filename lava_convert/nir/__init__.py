"""NIR (the Neuromorphic Intermediate Representation) both ways. :mod:`.writer` writes a
converted network as a NIR graph; :mod:`.reader` reads a NIR graph into the IR (an
``SnnNetwork``) with :mod:`.neurons` (neuron nodes) and :mod:`.chains` (linear nodes
between layers), from where quantization, NetX export and Lava take over
(:func:`lava_convert.from_nir`). Importing this package does not import ``nir``."""
