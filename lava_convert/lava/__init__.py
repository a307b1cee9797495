"""Running NetX networks as Lava processes: import fixes (:mod:`.compat`), the run guard
(:mod:`.guard`), the runtime (:mod:`.runtime`) and our processes (:mod:`.procs`).
Importing this package does not import Lava; running does."""
