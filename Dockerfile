# One image for every Customer Center component (identity, licensing, distribution, forum,
# gateway, their relays, consumers and migrations); docker-compose.yml gives each container its
# command. Configuration is environment variables only: nothing secret is baked in.
# Overridable for machines without a registry (docker-compose.yml passes PYTHON_IMAGE).
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first: this layer is rebuilt only when requirements.txt changes.
COPY requirements.txt ./
RUN pip install -r requirements.txt

# The code belongs to root and is read-only for the user the processes run as.
RUN useradd --system --uid 10001 --user-group --home-dir /app --no-create-home app
COPY . .
RUN mkdir -p /app/var && chown app:app /app/var

# Every component's source folder, as the Makefile's SOURCE_ROOTS puts them on the venv's path
# (tests/deploy/test_compose.py keeps the two lists equal).
ENV PYTHONPATH=/app:/app/services/identity:/app/services/licensing:/app/services/distribution:/app/services/forum:/app/gateway

USER app
EXPOSE 8000
# No default command: compose (or `docker run IMAGE <command>`) says which component runs.
CMD ["python", "-c", "import sys; sys.exit('give a command, e.g. python -m shared.relay identity (see docker-compose.yml)')"]
