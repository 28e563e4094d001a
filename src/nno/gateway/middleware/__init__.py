"""The gateway's middleware pipeline, one pure-ASGI module per layer, in the seed's order:
securityHeaders, errorHandler, requestId, requestLogger, timing, rateLimiter, cors, tracing, auth,
platformLifecycle.

Each layer is its own class and still works alone, but their send sides are fused: the first
layer to see a request wraps `send` once (`nno.gateway.response.ResponseSender`) and the others
register their response headers on that wrapper rather than nesting seven wrappers; the result is
header-for-header what the nested wrappers produced. The request headers the layers read are
scanned once per request (`nno.gateway.state.ClientHeaders`)."""
