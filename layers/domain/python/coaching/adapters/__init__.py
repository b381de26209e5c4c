"""I/O adapters: DynamoDB repositories and the EventBridge publisher."""
