"""The platform web application (FastAPI): API, portal and gateway."""
