"""The REST resources, one module per aggregate; ``registry.server.app.ROUTERS`` lists them."""
