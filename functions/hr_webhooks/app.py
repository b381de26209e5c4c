"""HR webhooks: promotions, joiners and leavers pushed by HR systems.

Serves its health route; its capability arrives with its own issue.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer
from coaching.api import add_health_route, http_entry, rest_resolver

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = rest_resolver()
add_health_route(app, "/webhooks/hr/health", service="hr_webhooks")

lambda_handler = http_entry(app, logger=logger, tracer=tracer, metrics=metrics)
