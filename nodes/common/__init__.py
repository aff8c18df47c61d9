"""What every node shares: user DQL validation (``dql``), raw-JSON paging over dtlpy listings
(``paging``) and the packaged defaults under ``pipeline_configs/`` (``defaults``)."""
