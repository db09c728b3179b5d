"""In-group services, each an application of the runtime: a sharded bank, a replicated
key-value store, a lock manager and a serverless function with its objects."""
