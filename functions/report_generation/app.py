"""Report generation: aggregate participation and competency reports.

Serves its health route; its capability arrives with its own issue.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer
from coaching.api import add_health_route, http_entry, rest_resolver

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = rest_resolver()
add_health_route(app, "/reports/health", service="report_generation")

lambda_handler = http_entry(app, logger=logger, tracer=tracer, metrics=metrics)
