# intake: a slim image with libmagic from Debian, running as a non-root user.
# Configure with environment variables (docs/configuration.md) or mount a config
# file and set INTAKE_CONFIG. The data directory (raw mail and files) is a volume.
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends libmagic1 \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --system --create-home --uid 10001 intake
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY intake ./intake
COPY migrations ./migrations
COPY config ./config
RUN pip install --no-cache-dir . && rm -rf /root/.cache

ENV INTAKE_DATA_DIR=/data \
    INTAKE_DATABASE_URL=sqlite:////data/intake.db \
    INTAKE_METRICS_HOST=0.0.0.0 \
    INTAKE_METRICS_PORT=9100 \
    PYTHONUNBUFFERED=1
RUN mkdir -p /data && chown intake:intake /data
VOLUME ["/data"]
USER intake
# 9100: /healthz and /metrics of `intake run`; 8090: the pre-check page (`intake precheck`,
# the second service of docker-compose.yml).
EXPOSE 9100 8090

# /healthz: the database answers and a poll succeeded within three intervals.
HEALTHCHECK --interval=60s --timeout=10s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:' + os.environ['INTAKE_METRICS_PORT'] + '/healthz', timeout=8).status == 200 else 1)"]

# Apply the migrations, then run the service (SIGTERM stops it cleanly). The pre-check page
# runs from the same image with the command `intake precheck --host 0.0.0.0`.
CMD ["sh", "-c", "intake db upgrade && exec intake run"]
