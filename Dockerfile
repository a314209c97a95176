# The engine image: a static binary on a small base.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/switchboard ./cmd/switchboard

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 switchboard
# docker-compose's certs volume starts as this folder (owned by the user
# that writes and reads the certificates).
RUN mkdir /certs && chown switchboard:switchboard /certs
COPY --from=build /out/switchboard /usr/local/bin/switchboard
USER switchboard
EXPOSE 8080 6330
ENTRYPOINT ["/usr/local/bin/switchboard"]
CMD ["serve"]
