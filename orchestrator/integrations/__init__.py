"""Integrations: what orchestrator talks to besides the hosts it deploys to.

Each integration is one module here behind an interface the engine already has, so adding one is
a new module, not an edit across the engine: webhooks (``webhooks.py``, an event sink posting the
deployment group's triggers) today; load balancers (haproxy, a command), alarm sources (a stop
source) and bundle stores (S3) next. An integration may import the models, the events and the
errors; nothing below it (models, engine, transport, state) imports an integration: the caller
that builds a deployment wires them in.
"""
