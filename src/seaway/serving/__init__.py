"""The serving gateway: Open Inference Protocol v2 and KServe v1 over one raw ASGI app.

    seaway deploy churn@7            # the routing table, in the store (seaway.serving.routes)
    seaway serve --port 8080         # uvicorn + httptools + uvloop (seaway.serving.server)

Parts, one module each: `routes` (the routing table: deploy, undeploy, read), `protocol`
(v2/v1 request and response codecs), `router` (weighted, sticky and shadow selection over a
table snapshot), `manager` (loading on first request, idle unload, memory budget),
`batching` (adaptive micro-batching), `app` (the ASGI application), `server` (the runner),
`telemetry` and `security` (metrics, live figures, the request log; tokens, rate limits).

Nothing here is imported by `import seaway.serving`: each module keeps its heavy imports
inside functions so the CLI stays fast.
"""
