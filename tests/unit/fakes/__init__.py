"""In-memory fakes of the services' ports: every rule is checkable without a database."""
