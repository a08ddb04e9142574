# A stand-in for python:3.11-slim-bookworm made from the local Debian base (images/build-local.sh), for
# building HubKit's Python images where no registry is reachable: Debian's own Python 3.11, venv and CA
# certificates, in one layer over the Debian base, as the official image layers its Python over
# debian:bookworm-slim. Not for release: the release images use the pinned upstream base.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*
CMD ["python3"]
