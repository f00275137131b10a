# A stand-in for python:3.11-slim built from Debian packages (see scripts/docker_base.sh): Debian bookworm's Python 3.11
# in a venv at /usr/local/python, first on PATH, so `python` and `pip` behave as in the official image.
ARG BASE=chatbotws-base:debian
FROM ${BASE}
ENV LANG=C.UTF-8 \
    PATH=/usr/local/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
COPY ca-certificates/ /usr/local/share/ca-certificates/
COPY pip.conf /etc/pip.conf
# As Debian's official images: apt keeps neither downloaded packages nor its package caches in a layer.
RUN printf '%s\n' \
      'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };' \
      'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };' \
      'Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";' >/etc/apt/apt.conf.d/docker-clean \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates python3 python3-venv \
 && update-ca-certificates \
 && python3 -m venv /usr/local/python \
 && rm -rf /var/lib/apt/lists/*
CMD ["python3"]
