"""``parsing serve``: the parser as an HTTP service (FastAPI + uvicorn) and the web studio to check and correct
garment names and save corrected parses as training data. Needs the ``serve`` extra."""
