# CaseBridge gateway image. Configure with CASEBRIDGE_* variables (see README).
# Run migrations once per release: docker run … casebridge db upgrade
# Personal data is stored encrypted: mount the key file as a secret and point
# CASEBRIDGE_KEY_FILE at it (e.g. --secret / -v keys:/run/secrets/casebridge-keys:ro);
# without a key the gateway refuses to start. Never bake keys into the image.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    CASEBRIDGE_HOST=0.0.0.0 \
    CASEBRIDGE_PORT=8000 \
    CASEBRIDGE_DATABASE_URL=sqlite:////app/var/casebridge.db \
    CASEBRIDGE_CONTRACTS_DIR=/app/contracts \
    CASEBRIDGE_MAPPINGS_DIR=/app/mappings \
    CASEBRIDGE_AGREEMENTS_DIR=/app/agreements \
    CASEBRIDGE_DEADLINES_DIR=/app/deadlines \
    CASEBRIDGE_CALENDARS_DIR=/app/calendars \
    CASEBRIDGE_DIRECTORY_DIR=/app/directory \
    CASEBRIDGE_KEY_FILE=/run/secrets/casebridge-keys

WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY adapters ./adapters
COPY sandboxes ./sandboxes
RUN pip install '.[sandboxes]' && useradd --system --home /app casebridge && mkdir -p /app/var \
    && chown casebridge /app/var
# Read at run time from beside the package: the canonical schemas, the mappings and the
# data-sharing agreements, deadline policies, calendars and the service directory (mount
# your own over /app/agreements, /app/deadlines, /app/calendars, /app/directory).
COPY contracts ./contracts
COPY mappings ./mappings
COPY agreements ./agreements
COPY deadlines ./deadlines
COPY calendars ./calendars
COPY directory ./directory

USER casebridge
VOLUME ["/app/var"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
CMD ["casebridge", "serve"]
