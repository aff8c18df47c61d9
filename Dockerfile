# Service image for the Active Learning app. The base is the runner image named in dataloop.json
# (tests/test_manifest.py keeps the two in sync).
FROM hub.dataloop.ai/dtlpy-runner-images/cpu:python3.12_full
USER 1000
WORKDIR /tmp/app
# the complete lock of every transitive dependency (generated from requirements.txt: python tools/lock_requirements.py)
COPY --chown=1000:1000 requirements.lock /tmp/app/requirements.lock
RUN pip install --user --no-cache-dir -r /tmp/app/requirements.lock
COPY --chown=1000:1000 main.py /tmp/app/main.py
COPY --chown=1000:1000 nodes /tmp/app/nodes
COPY --chown=1000:1000 pipeline_configs /tmp/app/pipeline_configs
