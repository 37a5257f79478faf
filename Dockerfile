# The control plane's image: one image for the web (gunicorn, the default command), the Celery worker, beat and the
# migration job (manifests/deploy/). Build: docker build -t <registry>/idp-multicloud:<version> .
#
# It needs no internet at run time: Python packages are installed here, static files (htmx, Swagger UI) are
# collected into the image and served by WhiteNoise, no CDN. At run time it talks only to what its configuration
# names: PostgreSQL, Redis, the GitOps remote, the management clusters and the cloud APIs of the providers.
#
# Python 3.11: the interpreter the test suite runs on.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# git and ssh: the gitops delivery target commits and pushes with the git CLI (IDP_GITOPS_SSH_KEY).
RUN apt-get update \
 && apt-get install -y --no-install-recommends git openssh-client \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 idp \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/idp --create-home --shell /usr/sbin/nologin idp

WORKDIR /app
COPY requirements.txt ./
RUN python -m venv /venv && /venv/bin/pip install -r requirements.txt
ENV PATH=/venv/bin:$PATH

COPY . .
# Static files into the image (the data directory is a volume at run time); byte-code compiled ahead, as the root
# filesystem is read-only in the cluster. The throw-away secret key only lets the settings load for collectstatic.
RUN DJANGO_SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(64))')" \
    IDP_DATA_DIR=/tmp/build-data DJANGO_STATIC_ROOT=/app/staticfiles \
      python manage.py collectstatic --noinput -v0 \
 && python -m compileall -q /app \
 && rm -rf /tmp/build-data \
 && mkdir -p /var/lib/idp \
 && chown idp:idp /var/lib/idp

ENV DJANGO_DEBUG=0 \
    DJANGO_STATIC_ROOT=/app/staticfiles \
    IDP_DATA_DIR=/var/lib/idp \
    LOG_FORMAT=json \
    HOME=/home/idp

USER 10001:10001
EXPOSE 8000
# GUNICORN_CMD_ARGS adds or overrides options (e.g. "--workers 4"); workers log to stderr.
CMD ["gunicorn", "portal.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "60", "--worker-tmp-dir", "/tmp"]
