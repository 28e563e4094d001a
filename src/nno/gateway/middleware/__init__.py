"""The gateway's middleware pipeline, one pure-ASGI module per layer, in the seed's order:
securityHeaders, errorHandler, requestId, requestLogger, timing, rateLimiter, cors, tracing, auth,
platformLifecycle."""
