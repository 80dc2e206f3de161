# crewmail container image: one static binary on distroless, running as a non-root user.
#
#   docker build -t crewmail .
#   docker run -d --name crewmail -p 25:2525 -p 127.0.0.1:8025:8025 -v crewmail:/data crewmail
#   docker exec crewmail /crewmail list create crew@lists.example.org -name "Garden crew"
#
# The baked-in config is contrib/docker.toml (data in the volume /data, SMTP on 2525, HTTP on
# 8025, outbound mail into /data/maildir). For real use mount your own over it:
#   -v ./crewmail.toml:/etc/crewmail/crewmail.toml:ro
# Admin commands reach the running server through its control socket /data/crewmail.sock.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /crewmail ./cmd/crewmail
# The volume's mount point, owned by the nonroot user (65532) so a new named volume is writable.
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /crewmail /crewmail
COPY contrib/docker.toml /etc/crewmail/crewmail.toml
COPY --from=build --chown=65532:65532 /out/data /data
USER nonroot:nonroot
# Admin commands run with `docker exec` find the same config.
ENV CREWMAIL_CONFIG=/etc/crewmail/crewmail.toml
VOLUME /data
# 2525: SMTP (a non-root user cannot bind 25: publish it with -p 25:2525). 8025: HTTP, /healthz.
EXPOSE 2525 8025
# No HEALTHCHECK yet: distroless has no curl or wget, and crewmail has no probe subcommand.
# Probe http://HOST:8025/healthz from outside.
ENTRYPOINT ["/crewmail"]
CMD ["serve", "-config", "/etc/crewmail/crewmail.toml"]
