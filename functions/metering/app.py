"""Metering: usage against allowances and monthly invoicing.

Serves its health route; its capability arrives with its own issue.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer
from coaching.api import add_health_route, http_entry, rest_resolver

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = rest_resolver()
add_health_route(app, "/metering/health", service="metering")

lambda_handler = http_entry(app, logger=logger, tracer=tracer, metrics=metrics)
