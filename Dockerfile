# The API image: gunicorn serving Django, static files by WhiteNoise, running as a non-root user.
# tests/deploy/test_image.py builds it and runs its CMD without a container engine: every line here is tested.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PORT=8000

WORKDIR /app

# Requirements first: the layer is rebuilt only when they change, not on every source edit.
COPY requirements.txt .
RUN pip install pip==26.3 && pip install -r requirements.txt

COPY . .

# Static files (browsable API, Swagger UI, Redoc) are collected at build time; the key is only for this step.
RUN SECRET_KEY=build-time-collectstatic-only python manage.py collectstatic --noinput --verbosity 0

RUN useradd --create-home --uid 10001 app && chown -R app:app /app
USER app

# Where the workers share their metrics, so /metrics adds them up. Set after the build steps, so the
# folder is made (by the settings, at the first command) by the user that serves, not by root at build.
ENV PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus

EXPOSE 8000

# Indexes (idempotent; ENSURE_INDEXES=defer leaves them to an operator; a failure is logged and the API starts
# all the same, docs/operations.md), the default model when no version is active, then the server.
CMD ["sh", "-c", "python manage.py ensure_indexes --at-start && python manage.py train_model --if-no-active && exec gunicorn --config estimator_project/gunicorn.conf.py estimator_project.wsgi"]
