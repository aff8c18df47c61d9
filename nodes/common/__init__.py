"""What every node shares: user DQL validation (``dql``), raw-JSON paging over dtlpy listings
(``paging``), the packaged defaults under ``pipeline_configs/`` (``defaults``), bounds on user
JSON and messages (``limits``), the kind check of entity inputs (``entities``) and the running
node's ``customNodeConfig`` (``context``)."""
