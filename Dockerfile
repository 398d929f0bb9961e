# Build the wheel (templates, static files and migrations are package data), then install only it.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml setup.py MANIFEST.in README.md ./
COPY idp ./idp
COPY clients ./clients
COPY templates ./templates
COPY static ./static
COPY migrations ./migrations
RUN pip wheel --no-cache-dir --no-deps -w /dist .

FROM python:3.11-slim
COPY constraints.txt /tmp/constraints.txt
COPY --from=build /dist/ /tmp/dist/
RUN pip install --no-cache-dir -c /tmp/constraints.txt /tmp/dist/*.whl && rm -rf /tmp/dist \
    && useradd --system --home /data idp && mkdir /data && chown idp /data
USER idp
WORKDIR /data
ENV IDP_DATA_DIR=/data
EXPOSE 5000
# Ready = database reachable, migrations applied, face models loaded (the first start converts them).
HEALTHCHECK --interval=15s --timeout=5s --start-period=180s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:5000/readyz', timeout=4).status != 200)"]
# Every address of the container: needs IDP_ISSUER=https://... (an http issuer is served on loopback only).
CMD ["idp", "serve", "--host", "0.0.0.0", "--port", "5000"]
