"""The OpenAPI document's paths, one module per feature (api/openapi.py puts them together)."""
