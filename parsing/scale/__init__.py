"""Scale-out: parsing many photos on a Ray cluster (``ray_job``); shards and concurrent writers are in
``parsing-predict --shard`` and ``parsing.outputs.folder``. Ray needs the ``ray`` extra."""
