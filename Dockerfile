# crewmail container image: one static binary on distroless, running as a non-root user.
#
#   docker build -t crewmail .
#   docker run -d --name crewmail --stop-timeout 60 -p 25:2525 -p 127.0.0.1:8025:8025 -v crewmail:/data crewmail
#   docker exec crewmail /crewmail list create crew@lists.example.org -name "Garden crew"
#
# The baked-in config is contrib/docker.toml (data in the volume /data, SMTP on 2525, IMAP on
# 1143, HTTP on 8025, outbound mail into /data/maildir). For real use mount your own over it,
# and the TLS certificate (readable by uid 65532):
#   -v /etc/crewmail/crewmail.toml:/etc/crewmail/crewmail.toml:ro -v /etc/crewmail/tls:/etc/crewmail/tls:ro
# docs/operator.md ("Docker") has a production example. Admin commands run with `docker exec`
# reach the running server through its control socket /data/crewmail.sock.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Static binaries (no cgo: Go's own DNS resolver, nothing from libc).
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/crewmail ./cmd/crewmail \
 && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/healthcheck ./contrib/healthcheck
# The volume's mount point, owned by the nonroot user (65532) so a new named volume is writable.
RUN mkdir -p /out/data

# distroless/static: CA certificates (for smarthost TLS), time zone data, /etc/passwd with
# nonroot; no shell.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/crewmail /crewmail
COPY --from=build /out/healthcheck /healthcheck
COPY contrib/docker.toml /etc/crewmail/crewmail.toml
COPY --from=build --chown=65532:65532 /out/data /data
USER nonroot:nonroot
# Admin commands run with `docker exec`, and the health check, find the same config.
ENV CREWMAIL_CONFIG=/etc/crewmail/crewmail.toml
VOLUME /data
# 2525: SMTP (a non-root user cannot count on binding 25: publish it with -p 25:2525).
# 1143: IMAP (STARTTLS once a certificate is configured). 8025: HTTP (/healthz, one-click
# unsubscribe). A mounted config that sets [imap] listen_tls = "0.0.0.0:1993" also serves
# IMAP with implicit TLS there, published with -p 993:1993.
EXPOSE 2525 1143 8025
# /healthcheck reads the same config and asks the [http] listener for /healthz (distroless has
# no curl or wget). A config with [http] listen = "" has nothing to ask: run with --no-healthcheck.
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 CMD ["/healthcheck"]
# SIGTERM stops crewmail gracefully; SMTP transactions may take up to 30 seconds to finish,
# longer than docker stop's default 10: give it --stop-timeout 60 (docker run) or
# stop_grace_period: 60s (compose).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/crewmail"]
CMD ["serve", "-config", "/etc/crewmail/crewmail.toml"]
