FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY idp ./idp
COPY clients ./clients
COPY templates ./templates
COPY static ./static
COPY migrations ./migrations
RUN pip install --no-cache-dir -e . && useradd --system --home /app idp && mkdir /data && chown idp /data
USER idp
ENV IDP_DATA_DIR=/data
EXPOSE 5000
CMD ["idp", "serve", "--host", "0.0.0.0", "--port", "5000"]
